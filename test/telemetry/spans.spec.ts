import { SpanKind, SpanStatusCode, trace, type SpanContext } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AGENTS_PATH, TransferHttpService, type TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import type { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { firstValueFrom } from 'rxjs';
import { fakeOptions } from '../support/auth-app';
import { captureAuthError, expectAuthError, secretsOf, waitFor } from '../support/e2e';
import { SecretGuard } from '../support/secret-guard';
import { A, SCOPE, spanRecord, telemetryRig } from './support';

const AUTH_PATH = '/v5/partner/transfer/agent/auth';
const LOGIN = 'freedompay.transfer.auth';
const REFRESH = 'freedompay.transfer.auth.refresh';

/**
 * The spans of issue 12: one per upstream auth call, HTTP client attributes, no credential or token in
 * any of them, the caller's span as parent when a caller waits, none for a background renewal.
 */
describe('OpenTelemetry spans (e2e)', () => {
  const rig = telemetryRig();
  const { fakeServer, boot } = rig;

  async function spans(): Promise<ReadableSpan[]> {
    await rig.harness.tracerProvider.forceFlush();
    return rig.harness.spans();
  }

  /** Runs `work` inside an active span named `caller`; resolves the span's context once it ended. */
  function asCaller(work: () => Promise<unknown>): Promise<{ caller: SpanContext; outcome: unknown }> {
    return trace.getTracer('test-caller').startActiveSpan('caller', async (span) => {
      try {
        const outcome = await work().catch((error: unknown) => error);
        return { caller: span.spanContext(), outcome };
      } finally {
        span.end();
      }
    });
  }

  /** Every attribute of the span of a POST to `fake` at `path` answered 200, and nothing else. */
  function answeredCall(
    fake: FakeTransferServer,
    { name, kind, path }: { name: string; kind: 'login' | 'refresh'; path: string },
  ): Record<string, unknown> {
    return {
      [A.name]: name,
      [A.kind]: kind,
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(fake.url).port),
      'url.full': `${fake.url}${path}`,
      'http.response.status_code': 200,
    };
  }

  it('Get token: one CLIENT span named freedompay.transfer.auth with HTTP client attributes', async () => {
    const fake = await fakeServer();
    await boot(fakeOptions(fake)); // fetchOnStartup: one Get token
    const [span, ...others] = await spans();
    expect(others).toEqual([]);
    expect(span).toBeDefined();
    const login = span as ReadableSpan;
    expect(login.name).toBe(LOGIN);
    expect(login.kind).toBe(SpanKind.CLIENT);
    expect(login.instrumentationScope.name).toBe(SCOPE);
    expect(login.attributes).toEqual(answeredCall(fake, { name: 'default', kind: 'login', path: AUTH_PATH }));
    expect(login.status.code).toBe(SpanStatusCode.UNSET);
    expect(login.events).toEqual([]);
    expect(login.parentSpanContext).toBeUndefined();
    expect(login.ended).toBe(true);
    expect(fake.calls.total).toBe(1);
  });

  it('Refresh token: a span named freedompay.transfer.auth.refresh, with the configured method and path', async () => {
    const refresh = { path: '/v5/partner/transfer/agent/refresh', method: 'POST' as const };
    const fake = await fakeServer({ refresh });
    const { auth } = await boot(fakeOptions(fake, { refresh }), 'payouts');
    await auth.forceRefresh();
    const all = await spans();
    expect(all.map((s) => s.name)).toEqual([LOGIN, REFRESH]);
    const span = all[1] as ReadableSpan;
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toEqual(answeredCall(fake, { name: 'payouts', kind: 'refresh', path: refresh.path }));
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 1 });
  });

  it('the default refresh: PATCH on the auth path', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(fakeOptions(fake));
    await auth.forceRefresh();
    const refresh = (await spans()).find((s) => s.name === REFRESH);
    expect(refresh?.attributes['http.request.method']).toBe('PATCH');
    expect(refresh?.attributes['url.full']).toBe(`${fake.url}${AUTH_PATH}`);
  });

  it('a 503: a span per attempt of the renewal, each with the status code, error.type "503" and an ERROR status', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
    fake.failNext('auth', { kind: 'status', status: 503 }, 3); // the renewal's 3 attempts
    const { caller, outcome } = await asCaller(() => auth.getAccessToken());
    expectAuthError(outcome, 'UPSTREAM_UNAVAILABLE');
    const all = await spans();
    expect(all).toHaveLength(3);
    for (const span of all) {
      expect(span.name).toBe(LOGIN);
      expect(span.attributes).toMatchObject({
        'http.response.status_code': 503,
        [A.errorType]: '503',
        [A.kind]: 'login',
      });
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'UPSTREAM_UNAVAILABLE' });
      expect(span.parentSpanContext?.spanId).toBe(caller.spanId); // every attempt, for the one caller
    }
  });

  it('a connection reset: no status code, error.type UPSTREAM_UNAVAILABLE, ERROR status', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
    fake.failNext('auth', { kind: 'reset' }, 3); // the renewal's 3 attempts
    expectAuthError(await captureAuthError(auth.getAccessToken()), 'UPSTREAM_UNAVAILABLE');
    const all = await spans();
    expect(all).toHaveLength(3);
    const span = all[2];
    expect(span?.attributes).not.toHaveProperty(['http.response.status_code']);
    expect(span?.attributes[A.errorType]).toBe('UPSTREAM_UNAVAILABLE');
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'UPSTREAM_UNAVAILABLE' });
  });

  it('a 200 with a body that is not JSON: status 200, error.type INVALID_RESPONSE, ERROR status', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
    fake.failNext('auth', { kind: 'body', body: '<html>maintenance</html>', contentType: 'text/html' });
    expectAuthError(await captureAuthError(auth.getAccessToken()), 'INVALID_RESPONSE');
    const [span] = await spans();
    expect(span?.attributes['http.response.status_code']).toBe(200);
    expect(span?.attributes[A.errorType]).toBe('INVALID_RESPONSE');
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'INVALID_RESPONSE' });
  });

  it('rejected credentials: 401, error.type "401", ERROR status INVALID_CREDENTIALS', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(
      fakeOptions(fake, { fetchOnStartup: false, agentSecret: 'test-secret-wrong-0123456789abcdef' }),
    );
    expectAuthError(await captureAuthError(auth.getAccessToken()), 'INVALID_CREDENTIALS');
    const [span, ...others] = await spans();
    expect(others).toEqual([]);
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 401, [A.errorType]: '401' });
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'INVALID_CREDENTIALS' });
  });

  it('one span per upstream call: a refused refresh and its fallback login are two spans under the caller', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(fakeOptions(fake));
    fake.revokeRefreshTokens();
    const { caller, outcome } = await asCaller(() => auth.forceRefresh());
    expect(outcome).toMatch(/^fake-at-/);
    const all = await spans();
    expect(all).toHaveLength(fake.calls.auth + fake.calls.refresh);
    expect(all.map((s) => s.name)).toEqual([LOGIN, REFRESH, LOGIN]);
    const [, refused, fallback] = all as [ReadableSpan, ReadableSpan, ReadableSpan];
    expect(refused.attributes).toMatchObject({ 'http.response.status_code': 401, [A.errorType]: '401' });
    expect(refused.status.code).toBe(SpanStatusCode.ERROR);
    expect(fallback.status.code).toBe(SpanStatusCode.UNSET);
    for (const span of [refused, fallback]) {
      expect(span.parentSpanContext?.spanId).toBe(caller.spanId);
      expect(span.spanContext().traceId).toBe(caller.traceId);
    }
  });

  it('a caller inside an active span that waits for a token: the auth span is its child', async () => {
    const fake = await fakeServer();
    const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
    const { caller, outcome } = await asCaller(() => auth.getAccessToken());
    expect(outcome).toMatch(/^fake-at-/);
    const [span, ...others] = await spans();
    expect(others).toEqual([]);
    expect(span?.parentSpanContext?.spanId).toBe(caller.spanId);
    expect(span?.spanContext().traceId).toBe(caller.traceId);
    // The caller's own context is left as it was.
    const callerSpan = rig.harness.allSpans().find((s) => s.name === 'caller');
    expect(callerSpan?.spanContext().spanId).toBe(caller.spanId);
    expect(callerSpan?.parentSpanContext).toBeUndefined();
  });

  it('a Transfer call answered 401 inside a caller span: the renewal its retry waits for is a child of that span', async () => {
    // The 401 retry of TransferHttpService calls invalidate(token) and then waits for the new token in
    // the caller's context: a caller waits, so the issue wants the auth span parented to its span.
    const fake = await fakeServer();
    const { app } = await boot(fakeOptions(fake));
    fake.revokeAccessTokens();
    const { caller, outcome } = await asCaller(() => firstValueFrom(app.get(TransferHttpService).get(AGENTS_PATH)));
    expect((outcome as { status?: unknown }).status).toBe(200);
    expect(fake.calls).toMatchObject({ agents: 2, refresh: 1 });
    const renewal = (await spans()).find((s) => s.name === REFRESH);
    expect(renewal).toBeDefined();
    expect(renewal?.spanContext().traceId).toBe(caller.traceId);
    expect(renewal?.parentSpanContext?.spanId).toBe(caller.spanId);
  });

  it('a cached token makes no span, and a caller refused at once makes none either', async () => {
    const fake = await fakeServer();
    // One attempt a renewal: the 2.5-5 s wait before a second one would outlast the test. This is about
    // the refusal during the backoff, which makes no span.
    const { auth } = await boot(
      fakeOptions(fake, { fetchOnStartup: false, retry: { maxAttempts: 1, baseDelayMs: 5_000, maxDelayMs: 10_000 } }),
    );
    fake.failNext('auth', { kind: 'status', status: 500 });
    await captureAuthError(auth.getAccessToken());
    await asCaller(() => auth.getAccessToken()); // refused: backoff
    expect(await spans()).toHaveLength(1);
    await auth.forceRefresh();
    for (let i = 0; i < 10; i++) await asCaller(() => auth.getAccessToken());
    expect(await spans()).toHaveLength(2);
    expect(fake.calls.total).toBe(2);
  });

  it('a scheduled (background) renewal: its span has no parent, even after a caller-parented login', async () => {
    // 2 s tokens: the background renewal is due within 1.5 s of the login.
    const fake = await fakeServer({ accessTtlMs: 2_000 });
    const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
    const { caller } = await asCaller(() => auth.getAccessToken());
    await waitFor(() => rig.harness.spans().some((s) => s.name === REFRESH), 'the scheduled refresh span', {
      timeoutMs: 8_000,
    });
    const [login, background] = (await spans()) as [ReadableSpan, ReadableSpan];
    expect(login.parentSpanContext?.spanId).toBe(caller.spanId);
    expect(background.name).toBe(REFRESH);
    expect(background.attributes['http.response.status_code']).toBe(200);
    expect(background.parentSpanContext).toBeUndefined();
    expect(background.spanContext().traceId).not.toBe(caller.traceId);
  });

  it('no attribute, event or status of any span (or metric point) holds the agent secret or a token', async () => {
    const fake = await fakeServer({ accessTtlMs: 60_000 });
    const provided = await boot(
      fakeOptions(fake, { agentSecret: () => fake.agentSecret, telemetry: { agentIdAttribute: true } }),
      'provided',
    );
    const plain = await boot(fakeOptions(fake, { telemetry: { agentIdAttribute: true } }));
    const tokens: string[] = [];
    const run = async (auth: TransferAuthService): Promise<void> => {
      tokens.push(await auth.getAccessToken());
      tokens.push(await auth.forceRefresh()); // refresh: the refresh token in header and body
      auth.invalidate(tokens[tokens.length - 1]);
      tokens.push(await auth.getAccessToken());
      fake.revokeRefreshTokens();
      tokens.push(await auth.forceRefresh()); // refused refresh token (fingerprinted in the error), then login
      fake.failNext('refresh', { kind: 'status', status: 401 });
      fake.failNext('auth', { kind: 'status', status: 503 }, 3); // every attempt of the fallback login
      await captureAuthError(auth.forceRefresh());
      tokens.push(await auth.forceRefresh());
    };
    expect((await asCaller(() => run(provided.auth))).outcome).toBeUndefined();
    await run(plain.auth);

    const all = await spans();
    expect(all.length).toBe(fake.calls.auth + fake.calls.refresh);
    expect(all.length).toBeGreaterThan(15);
    const collected = await rig.harness.collect();
    const guard = new SecretGuard();
    all.forEach((span, i) => guard.value(`span#${i} ${span.name}`, spanRecord(span)));
    guard.value('metric points', collected.allPoints());
    const secrets = [...new Set([...secretsOf(fake), ...tokens])];
    expect(tokens.every((t) => fake.issuedTokens().includes(t))).toBe(true);
    expect(guard.size).toBeGreaterThan(all.length);
    expect(guard.leaks(secrets)).toEqual([]);
    // The agent id is there (opted in), and nothing else that identifies the agent.
    expect(all.every((s) => s.attributes[A.agentId] === fake.agentId)).toBe(true);
  });
});
