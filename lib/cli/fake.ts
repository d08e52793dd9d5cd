import { parseArgs } from 'node:util';
import type { FakeTransferServerOptions } from '../testing/fake-transfer-server.types';
import { FakeTransferServer } from '../testing/fake-transfer-server';
import { flagsOf, integerFlag, UsageError, type CliIo } from './args';

type FakeRefresh = FakeTransferServerOptions['refresh'];
const METHODS = ['PATCH', 'POST', 'PUT'];
const PLACES = ['header', 'body', 'both'] as const;

/** `--refresh false`, or `METHOD[:PATH[:TOKEN_IN]]` (e.g. `POST:/v5/partner/transfer/agent/refresh:body`). */
export function parseRefreshFlag(value: string | undefined): FakeRefresh {
  if (value === undefined) return undefined;
  if (value === 'false') return false;
  const [method = '', path, tokenIn, ...more] = value.split(':');
  const upper = method.toUpperCase();
  if (!METHODS.includes(upper) || more.length > 0) {
    throw new UsageError(
      `--refresh expects false or METHOD[:PATH[:TOKEN_IN]] with METHOD one of ${METHODS.join(', ')}.`,
    );
  }
  if (path !== undefined && !path.startsWith('/')) throw new UsageError('--refresh: PATH must start with "/".');
  const place = PLACES.find((p) => p === tokenIn);
  if (tokenIn !== undefined && place === undefined) {
    throw new UsageError(`--refresh: TOKEN_IN must be one of ${PLACES.join(', ')}.`);
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
  const fake = new FakeTransferServer({
    agentId,
    authPath,
    refresh: parseRefreshFlag(flags.refresh),
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
  const routes = describeRoutes(flags['auth-path'], parseRefreshFlag(flags.refresh));
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

function describeRoutes(authPath: string | undefined, refresh: FakeRefresh): string {
  const auth = authPath ?? '/v5/partner/transfer/agent/auth';
  const login = `Get token: POST ${auth}`;
  if (refresh === false) return `${login}; no Refresh token.`;
  const method = refresh?.method ?? 'PATCH';
  return `${login}; Refresh token: ${method} ${refresh?.path ?? auth} (token in ${refresh?.tokenIn ?? 'both'}).`;
}
