import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { inspect } from 'node:util';
import { firstValueFrom } from 'rxjs';
import {
  AGENTS_PATH,
  getTransferHttpToken,
  TRANSFER_AUTH_MODULE_OPTIONS,
  TransferAuthError,
  TransferAuthModule,
  TransferHttpService,
  type TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { resolveTransferHttpOptions } from '../../lib/upstream/resolve-options';
import { fakeOptions } from '../support/auth-app';

/**
 * Issue 10, finding 1: the client's base URL is visible where `@nestjs/axios` users look for it, and
 * its axios defaults can be set (`httpDefaults`), except those it keeps to itself.
 */
describe('TransferHttpService options', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  async function boot(registration: ReturnType<typeof TransferAuthModule.forRoot>): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({ imports: [registration] }).compile();
    app = await moduleRef.init();
    return app;
  }

  /** The INVALID_CONFIG that creating the module with these options fails with. */
  async function configError(overrides: Record<string, unknown>, name?: string): Promise<TransferAuthError> {
    const options = { ...fakeOptions(fake), ...overrides } as TransferAuthModuleOptions;
    const error = await boot(TransferAuthModule.forRoot({ ...options, name })).catch((e: unknown) => e);
    expect(TransferAuthError.is(error, 'INVALID_CONFIG')).toBe(true);
    return error as TransferAuthError;
  }

  it('axiosRef.defaults.baseURL is the configured baseUrl (trailing slash trimmed), for named registrations too', async () => {
    await boot(TransferAuthModule.forRoot(fakeOptions(fake, { baseUrl: `${fake.url}/` })));
    expect(app?.get(TransferHttpService).axiosRef.defaults.baseURL).toBe(fake.url);
    await app?.close();
    await boot(TransferAuthModule.forRoot({ ...fakeOptions(fake), name: 'kz' }));
    expect(app?.get<TransferHttpService>(getTransferHttpToken('kz')).axiosRef.defaults.baseURL).toBe(fake.url);
  });

  it('httpDefaults reach the client (forRootAsync too, through the options protection)', async () => {
    await boot(
      TransferAuthModule.forRootAsync({
        useFactory: () =>
          fakeOptions(fake, {
            httpDefaults: { headers: { 'X-Partner-Trace': 'trace-1' }, validateStatus: () => true, proxy: false },
            httpTimeoutMs: 5_000,
          }),
      }),
    );
    const http = app!.get(TransferHttpService);
    const response = await firstValueFrom(http.get(AGENTS_PATH));
    expect(response.status).toBe(200);
    const sent = fake.requests.find((r) => r.endpoint === 'agents');
    expect(sent?.headers['x-partner-trace']).toBe('trace-1');
    expect(sent?.headers.authorization).toMatch(/^Bearer /);
    fake.failNext('agents', { kind: 'status', status: 503 });
    await expect(firstValueFrom(http.get(AGENTS_PATH))).resolves.toMatchObject({ status: 503 }); // validateStatus
    // The container's copy of the options keeps the new ones.
    const stored = app!.get<TransferAuthModuleOptions>(TRANSFER_AUTH_MODULE_OPTIONS);
    expect(stored.httpTimeoutMs).toBe(5_000);
    expect(stored.httpDefaults).toMatchObject({ headers: { 'X-Partner-Trace': 'trace-1' } });
  });

  it('an Authorization header in httpDefaults is refused, even per method', async () => {
    for (const headers of [{ Authorization: 'Bearer B4D' }, { common: { authorization: 'Basic B4D' } }]) {
      const error = await configError({ httpDefaults: { headers } });
      expect(error.message).toBe(
        'Invalid TransferAuthModule option `httpDefaults.headers` (the unnamed registration): must not set ' +
          '`Authorization`: the client sends its own.',
      );
    }
  });

  it.each([
    ['baseURL', 'https://elsewhere.example/B4D'],
    ['url', '/B4D'],
    ['adapter', 'fetch'],
    ['maxRedirects', 5],
    ['beforeRedirect', () => undefined],
    ['transport', { request: () => undefined }],
    ['socketPath', '/tmp/B4D.sock'],
    ['proxy', { host: 'B4D.example', port: 3128 }],
    ['auth', { username: 'B4D', password: 'B4D' }],
    ['timeout', 1_000],
  ])(
    'httpDefaults.%s is refused with INVALID_CONFIG naming it and the registration, not its value',
    async (key, value) => {
      const error = await configError({ httpDefaults: { [key]: value } }, 'kz');
      expect(error.message).toMatch(
        new RegExp(`^Invalid TransferAuthModule option \`httpDefaults\\.${key}\` \\(registration \`kz\`\\): `),
      );
      expect(error.message).not.toContain('B4D');
      expect(fake.calls.total).toBe(0);
    },
  );

  it.each([
    ['httpTimeoutMs', { httpTimeoutMs: 0 }, 'expected a positive finite number'],
    ['httpTimeoutMs', { httpTimeoutMs: -1 }, 'expected a positive finite number'],
    ['httpTimeoutMs', { httpTimeoutMs: Number.NaN }, 'expected a positive finite number'],
    ['httpTimeoutMs', { httpTimeoutMs: '30000' }, 'expected a positive finite number'],
    ['httpTimeoutMs', { httpTimeoutMs: 2 ** 31 }, 'must not exceed 2147483647 (about 24.8 days)'],
    ['httpDefaults', { httpDefaults: 'B4D' }, 'expected an object of axios defaults'],
    ['httpDefaults', { httpDefaults: ['B4D'] }, 'expected an object of axios defaults'],
    ['httpDefaults.headers', { httpDefaults: { headers: 'B4D' } }, 'expected an object'],
  ])('%s: %j is INVALID_CONFIG', async (option, overrides, why) => {
    const error = await configError(overrides);
    expect(error.message).toBe(`Invalid TransferAuthModule option \`${option}\` (the unnamed registration): ${why}.`);
  });

  it('each option is checked alone: a good one next to a bad one is not blamed', async () => {
    const error = await configError({ httpTimeoutMs: 1_000, httpDefaults: { timeout: 5 } });
    expect(error.message).toMatch(/`httpDefaults\.timeout`/);
    const other = await configError({ httpTimeoutMs: -1, httpDefaults: { headers: { 'X-Ok': '1' } } });
    expect(other.message).toMatch(/`httpTimeoutMs`/);
  });
});

describe('resolveTransferHttpOptions', () => {
  const base = { agentId: 'a', agentSecret: 's' };

  it('defaults: httpTimeoutMs 30 000, no httpDefaults', () => {
    const resolved = resolveTransferHttpOptions(base);
    expect(resolved.httpTimeoutMs).toBe(30_000);
    expect(resolved.httpDefaults).toEqual({});
  });

  it('keeps a copy of httpDefaults that printing does not show (it may hold credentials)', () => {
    const httpDefaults = { headers: { 'X-Api-Key': 'k3y-B4D' }, proxy: false as const, timeout: undefined };
    const resolved = resolveTransferHttpOptions({ ...base, httpDefaults, httpTimeoutMs: 1_500 });
    expect(resolved.httpTimeoutMs).toBe(1_500);
    expect(resolved.httpDefaults).toEqual({ headers: { 'X-Api-Key': 'k3y-B4D' }, proxy: false });
    expect(resolved.httpDefaults).not.toBe(httpDefaults);
    expect(inspect(resolved, { depth: 5 }) + JSON.stringify(resolved)).not.toContain('k3y-B4D');
  });
});
