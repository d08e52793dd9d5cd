import { Test } from '@nestjs/testing';
import type { INestApplicationContext } from '@nestjs/common';
import {
  TransferAuthError,
  TransferAuthModule,
  TransferAuthService,
  type TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, describeError, expectAuthError, leakedSecrets, unusedPort, waitFor } from '../support/e2e';

describe('startup against FakeTransferServer', () => {
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

  it('fetches a token during init and serves it from the cache afterwards', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
      ],
    }).compile();
    app = await moduleRef.init();
    expect(fake.calls.auth).toBe(1);
    const auth = app.get(TransferAuthService);
    const token = await auth.getAccessToken();
    expect(fake.isAccessTokenValid(token)).toBe(true);
    await Promise.all(Array.from({ length: 50 }, () => auth.getAccessToken()));
    expect(fake.calls.total).toBe(1);
    expect(auth.getStatus().state).toBe('valid');
  });
});

describe('startup failures and recovery (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  it.each([401, 403])(
    'a %i on Get token (wrong secret, or a forbidden agent) fails init with INVALID_CREDENTIALS after one call',
    async (status) => {
      const wrongSecret = `wrong-secret-${status}-${Math.random().toString(36).slice(2)}`;
      if (status === 403) fake.failNext('auth', { kind: 'status', status: 403 });
      const error = await captureAuthError(
        createAuthApp(fakeOptions(fake, status === 403 ? {} : { agentSecret: wrongSecret })),
      );
      expectAuthError(error, 'INVALID_CREDENTIALS');
      expect(error.status).toBe(status);
      expect(fake.calls.auth).toBe(1);
      expect(leakedSecrets(describeError(error), [wrongSecret, fake.agentSecret])).toEqual([]);
    },
  );

  // `hidden`: a string from the bad value that must not appear in the error (the value itself, where it is one).
  const badOptions: { name: string; option: string; override: Record<string, unknown>; hidden?: string }[] = [
    { name: 'agentId missing', option: 'agentId', override: { agentId: undefined } },
    { name: 'agentId empty', option: 'agentId', override: { agentId: '' } },
    { name: 'agentId blank', option: 'agentId', override: { agentId: '   ' } },
    { name: 'agentId not a string', option: 'agentId', override: { agentId: 424242 }, hidden: '424242' },
    { name: 'agentSecret missing', option: 'agentSecret', override: { agentSecret: undefined } },
    { name: 'agentSecret empty', option: 'agentSecret', override: { agentSecret: '' } },
    { name: 'baseUrl not a URL', option: 'baseUrl', override: { baseUrl: 'not a url at all xyzzy' }, hidden: 'xyzzy' },
    {
      name: 'baseUrl http: to a non-loopback host',
      option: 'baseUrl',
      override: { baseUrl: 'http://plain-http-host.example' },
      hidden: 'plain-http-host',
    },
    {
      name: 'baseUrl ftp:',
      option: 'baseUrl',
      override: { baseUrl: 'ftp://127.0.0.1/files-xyzzy' },
      hidden: 'files-xyzzy',
    },
    {
      name: 'baseUrl with credentials',
      option: 'baseUrl',
      override: { baseUrl: 'https://user:pa55word@api.example' },
      hidden: 'pa55word',
    },
    { name: 'requestTimeoutMs zero', option: 'requestTimeoutMs', override: { requestTimeoutMs: 0 } },
    {
      name: 'requestTimeoutMs negative',
      option: 'requestTimeoutMs',
      override: { requestTimeoutMs: -987654 },
      hidden: '987654',
    },
    {
      name: 'requestTimeoutMs NaN',
      option: 'requestTimeoutMs',
      override: { requestTimeoutMs: Number.NaN },
      hidden: 'NaN',
    },
    {
      name: 'refreshMarginMs negative',
      option: 'refreshMarginMs',
      override: { refreshMarginMs: -123457 },
      hidden: '123457',
    },
    { name: 'retry.maxAttempts zero', option: 'retry.maxAttempts', override: { retry: { maxAttempts: 0 } } },
    {
      name: 'retry.baseDelayMs negative',
      option: 'retry.baseDelayMs',
      override: { retry: { baseDelayMs: -555551 } },
      hidden: '555551',
    },
    {
      name: 'retry.maxDelayMs infinite',
      option: 'retry.maxDelayMs',
      override: { retry: { maxDelayMs: Number.POSITIVE_INFINITY } },
      hidden: 'Infinity',
    },
    {
      name: 'refresh.method unknown',
      option: 'refresh.method',
      override: { refresh: { method: 'DELETE' } },
      hidden: 'DELETE',
    },
    {
      name: 'refresh.tokenIn unknown',
      option: 'refresh.tokenIn',
      override: { refresh: { tokenIn: 'cookie-jar' } },
      hidden: 'cookie-jar',
    },
  ];

  it.each(badOptions)('$name: init fails with INVALID_CONFIG naming `$option`, not its value', async (row) => {
    const options = { ...fakeOptions(fake), ...row.override } as unknown as TransferAuthModuleOptions;
    const error = await captureAuthError(createAuthApp(options));
    expectAuthError(error, 'INVALID_CONFIG');
    expect(error.message).toContain(`\`${row.option}\``);
    const shown = describeError(error);
    expect(leakedSecrets(shown, [fake.agentSecret, ...(row.hidden === undefined ? [] : [row.hidden])])).toEqual([]);
    expect(fake.calls.total).toBe(0);
  });

  it('INVALID_CONFIG fails init even with fetchOnStartup: false', async () => {
    const error = await captureAuthError(createAuthApp(fakeOptions(fake, { fetchOnStartup: false, agentSecret: '' })));
    expectAuthError(error, 'INVALID_CONFIG');
    expect(error.message).toContain('`agentSecret`');
  });

  it('an unreachable upstream does not fail init; callers get UPSTREAM_UNAVAILABLE; it recovers in the background', async () => {
    const port = await unusedPort();
    const url = `http://127.0.0.1:${port}`;
    app = await createAuthApp(fakeOptions(fake, { baseUrl: url }));
    const { auth, events } = app;
    expect(auth.getStatus().state).not.toBe('valid');

    const error = await captureAuthError(auth.getAccessToken());
    expectAuthError(error, 'UPSTREAM_UNAVAILABLE');
    expect(auth.getStatus().lastError?.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(events.some((e) => e.type === 'token.failed' && e.code === 'UPSTREAM_UNAVAILABLE')).toBe(true);

    // The upstream comes back on that port: the background retry picks it up without any caller.
    await fake.stop();
    fake = await new FakeTransferServer({ agentId: fake.agentId, agentSecret: fake.agentSecret }).start(port);
    await waitFor(() => auth.getStatus().state === 'valid', 'the background retry to obtain a token');
    expect(fake.calls.auth).toBe(1);
    expect(events.at(-1)?.type).toBe('token.acquired');
    const token = await auth.getAccessToken();
    expect(fake.isAccessTokenValid(token)).toBe(true);
    expect(fake.calls.total).toBe(1);
    expect(auth.getStatus().lastError).toBeUndefined();
  });

  it('an upstream answering 503 does not fail init; callers get UPSTREAM_UNAVAILABLE until it recovers', async () => {
    fake.failAlways('auth', { kind: 'status', status: 503 });
    app = await createAuthApp(fakeOptions(fake));
    const { auth } = app;
    // One renewal during init, its 3 attempts (5-10 and 10-20 ms apart): a 503 is fast. A failing upstream
    // holds the boot no longer than that: a hanging one is cut at requestTimeoutMs and not retried.
    expect(fake.calls.auth).toBe(3);

    const error = await captureAuthError(auth.getAccessToken());
    expectAuthError(error, 'UPSTREAM_UNAVAILABLE');
    expect(error.status).toBe(503);
    expect(app.logger.lines.some((line) => line.startsWith('warn') && line.includes('UPSTREAM_UNAVAILABLE'))).toBe(
      true,
    );

    // Background retries keep failing: the first failure is logged, the rest stay quiet (one line a minute).
    await waitFor(() => fake.calls.auth >= 12, 'three background renewals after the one at init');
    const renewalLines = (): string[] => (app?.logger.lines ?? []).filter((line) => line.includes('Token renewal'));
    expect(renewalLines()).toHaveLength(1);

    fake.clearFaults();
    await waitFor(() => auth.getStatus().state === 'valid', 'the background retry to obtain a token');
    const token = await auth.getAccessToken();
    expect(fake.isAccessTokenValid(token)).toBe(true);
    expect(renewalLines()).toHaveLength(2);
    expect(renewalLines()[1]).toMatch(/^log Token renewal recovered/);
  });

  it('a malformed answer at startup does not fail init either (INVALID_RESPONSE, retried in the background)', async () => {
    fake.failNext('auth', { kind: 'body', body: '<html>maintenance</html>', contentType: 'text/html' });
    app = await createAuthApp(fakeOptions(fake));
    expect(app.events[0]).toMatchObject({ type: 'token.failed', code: 'INVALID_RESPONSE', background: false });
    await waitFor(() => app?.auth.getStatus().state === 'valid', 'the background retry to obtain a token');
    expect(fake.calls.auth).toBe(2);
  });

  it('the error thrown for bad credentials is the TransferAuthError class exported by the package', async () => {
    await expect(createAuthApp(fakeOptions(fake, { agentSecret: 'nope' }))).rejects.toBeInstanceOf(TransferAuthError);
  });
});
