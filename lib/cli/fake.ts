import { parseArgs } from 'node:util';
import type { FakeTransferServerOptions } from '../testing/fake-transfer-server.types';
import { FakeTransferServer } from '../testing/fake-transfer-server';
import { fakeRoutes, type FakeRoutes } from '../testing/fake-routes';
import { REFRESH_METHODS, REFRESH_TOKEN_LOCATIONS } from '../transfer-auth.constants';
import { flagsOf, integerFlag, UsageError, type CliIo } from './args';

type FakeRefresh = FakeTransferServerOptions['refresh'];

/** `--refresh false`, or `METHOD[:PATH[:TOKEN_IN]]` (e.g. `POST:/v5/partner/transfer/agent/refresh:body`). */
export function parseRefreshFlag(value: string | undefined): FakeRefresh {
  if (value === undefined) return undefined;
  if (value === 'false') return false;
  const [method = '', path, tokenIn, ...more] = value.split(':');
  const upper = REFRESH_METHODS.find((m) => m === method.toUpperCase());
  if (upper === undefined || more.length > 0) {
    throw new UsageError(
      `--refresh expects false or METHOD[:PATH[:TOKEN_IN]] with METHOD one of ${REFRESH_METHODS.join(', ')}.`,
    );
  }
  if (path !== undefined && !path.startsWith('/')) throw new UsageError('--refresh: PATH must start with "/".');
  const place = REFRESH_TOKEN_LOCATIONS.find((p) => p === tokenIn);
  if (tokenIn !== undefined && place === undefined) {
    throw new UsageError(`--refresh: TOKEN_IN must be one of ${REFRESH_TOKEN_LOCATIONS.join(', ')}.`);
  }
  return {
    method: upper,
    ...(path === undefined ? {} : { path }),
    ...(place === undefined ? {} : { tokenIn: place }),
  };
}

/**
 * `fake`: the package's FakeTransferServer on 127.0.0.1, for local development (a front-end team, a
 * docker-compose file): prints its URL and the fake's own credentials, then serves until Ctrl+C or
 * SIGTERM. The credentials printed are the fake's, never a real agent's.
 */
export async function runFake(args: string[], io: CliIo): Promise<number> {
  const flags = flagsOf(
    'fake',
    () =>
      parseArgs({
        args,
        strict: true,
        allowPositionals: false,
        options: {
          port: { type: 'string' },
          'auth-path': { type: 'string' },
          refresh: { type: 'string' },
          'reusable-refresh': { type: 'boolean', default: false },
          'revoke-family-on-reuse': { type: 'boolean', default: false },
          'access-ttl': { type: 'string' },
          'refresh-ttl': { type: 'string' },
          'agent-id': { type: 'string' },
        },
      }).values,
  );
  const port = integerFlag(flags.port, '--port', 0, 65_535) ?? 0;
  const accessTtl = integerFlag(flags['access-ttl'], '--access-ttl', 1, 86_400 * 366);
  const refreshTtl = integerFlag(flags['refresh-ttl'], '--refresh-ttl', 1, 86_400 * 366);
  const agentId = flags['agent-id'];
  if (agentId !== undefined && agentId.trim() === '') throw new UsageError('--agent-id must not be empty.');
  const authPath = flags['auth-path'];
  if (authPath !== undefined && !authPath.startsWith('/')) throw new UsageError('--auth-path must start with "/".');
  const refresh = parseRefreshFlag(flags.refresh);
  const fake = new FakeTransferServer({
    agentId,
    authPath,
    refresh,
    strictRefresh: !flags['reusable-refresh'],
    revokeFamilyOnReuse: flags['revoke-family-on-reuse'],
    ...(accessTtl === undefined ? {} : { accessTtlMs: accessTtl * 1000 }),
    ...(refreshTtl === undefined ? {} : { refreshTtlMs: refreshTtl * 1000 }),
  });
  try {
    await fake.start(port);
  } catch (error) {
    io.err(`Could not listen on port ${port}: ${(error as { code?: string }).code ?? 'error'}.\n`);
    return 69; // EX_UNAVAILABLE
  }
  const routes = describeRoutes(fakeRoutes({ authPath, refresh }));
  io.out(
    [
      `FakeTransferServer listening on ${fake.url}`,
      `FREEDOMPAY_BASE_URL=${fake.url}`,
      `FREEDOMPAY_AGENT_ID=${fake.agentId}`,
      `FREEDOMPAY_AGENT_SECRET=${fake.agentSecret}`,
      routes,
      `Refresh tokens are ${flags['reusable-refresh'] ? 'reusable' : 'single-use'}${flags['revoke-family-on-reuse'] ? '; a reuse revokes the whole family' : ''}.`,
      'Stop with Ctrl+C.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await fake.stop();
  io.out(`Stopped after ${fake.calls.total} requests (${fake.calls.auth} logins, ${fake.calls.refresh} refreshes).\n`);
  return 0;
}

/** The routes the fake serves, with the defaults merged as the fake (and the module) merges them. */
function describeRoutes({ authPath, refresh }: FakeRoutes): string {
  const login = `Get token: POST ${authPath}`;
  if (refresh === false) return `${login}; no Refresh token.`;
  return `${login}; Refresh token: ${refresh.method} ${refresh.path} (token in ${refresh.tokenIn}).`;
}
