import { AgentTokenResponseDto } from '../../../lib/dto/agent-token-response.dto';
import { TransferAuthError } from '../../../lib/errors/transfer-auth.error';
import type { TransferAuthEvent } from '../../../lib/interfaces/transfer-auth-event.interface';
import type { TransferAuthModuleOptions } from '../../../lib/interfaces/transfer-auth-module-options.interface';
import { resolveTransferAuthOptions } from '../../../lib/upstream/resolve-options';
import { instant, systemClock, type Instant } from '../../../lib/token-lifecycle/clock';
import { TokenLifecycle, type LifecycleHooks } from '../../../lib/token-lifecycle/token-lifecycle';
import type { TokenEndpoint, UpstreamTokenResponse } from '../../../lib/upstream/token-endpoint';

/** `2024-10-02T10:52:21.123000Z`: the upstream's format, microseconds and all. */
export function isoMicro(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** What one upstream answer looks like; every field has a default. */
export interface TokenSpec {
  /** Access token lifetime on the upstream's clock. */
  lifetimeMs?: number;
  refreshLifetimeMs?: number;
  /** Whether the upstream sends a `Date` header (whole seconds, truncated). */
  dateHeader?: boolean;
  /** Overrides of the body's expiry fields (garbage, past dates, ...). */
  accessExpireAt?: string;
  refreshExpireAt?: string;
}

/** The token and its true expiry, on the test's true clock. */
export interface Issued {
  accessToken: string;
  refreshToken: string;
  lifetimeMs: number;
  trueExpiresAtMs: number;
}

/** Builds an `UpstreamTokenResponse` as the HTTP client would hand it over. */
export function makeTokenResponse(args: {
  accessToken: string;
  refreshToken: string;
  serverNowMs: number;
  lifetimeMs: number;
  refreshLifetimeMs: number;
  dateHeader: boolean;
  sentAt: Instant;
  receivedAt: Instant;
  accessExpireAt?: string;
  refreshExpireAt?: string;
}): UpstreamTokenResponse {
  const body = Object.assign(new AgentTokenResponseDto(), {
    access_token: args.accessToken,
    refresh_token: args.refreshToken,
    access_expire_at: args.accessExpireAt ?? isoMicro(args.serverNowMs + args.lifetimeMs),
    refresh_expire_at: args.refreshExpireAt ?? isoMicro(args.serverNowMs + args.refreshLifetimeMs),
  });
  return {
    body,
    status: 200,
    serverDateMs: args.dateHeader ? Math.floor(args.serverNowMs / 1000) * 1000 : undefined,
    sentAt: args.sentAt,
    receivedAt: args.receivedAt,
  };
}

export type CallKind = 'get' | 'refresh';

/** One upstream call the lifecycle made; the test decides how and when it settles. */
export class StubCall {
  settled = false;
  readonly sentAt: Instant = instant(systemClock);
  readonly atMs = Date.now();
  private resolveFn!: (response: UpstreamTokenResponse) => void;
  private rejectFn!: (error: unknown) => void;
  readonly promise = new Promise<UpstreamTokenResponse>((resolve, reject) => {
    this.resolveFn = resolve;
    this.rejectFn = reject;
  });

  constructor(
    private readonly stub: StubEndpoint,
    readonly kind: CallKind,
    readonly refreshToken: string | undefined,
  ) {}

  /**
   * Answers with a fresh token pair, issued now by the upstream; the answer reaches the client
   * `deliverAfterMs` later (a slow network), on a fake timer.
   */
  succeed(spec: TokenSpec = {}, deliverAfterMs = 0): Issued {
    const issued = this.stub.issue(spec);
    const serverNowMs = this.stub.trueNow() + this.stub.skewMs;
    this.settle();
    const deliver = (): void =>
      this.resolveFn(
        makeTokenResponse({
          accessToken: issued.accessToken,
          refreshToken: issued.refreshToken,
          serverNowMs,
          lifetimeMs: issued.lifetimeMs,
          refreshLifetimeMs: spec.refreshLifetimeMs ?? this.stub.defaults.refreshLifetimeMs ?? 86_400_000,
          dateHeader: spec.dateHeader ?? this.stub.defaults.dateHeader ?? true,
          sentAt: this.sentAt,
          receivedAt: instant(systemClock),
          accessExpireAt: spec.accessExpireAt ?? this.stub.defaults.accessExpireAt,
          refreshExpireAt: spec.refreshExpireAt ?? this.stub.defaults.refreshExpireAt,
        }),
      );
    if (deliverAfterMs > 0) setTimeout(deliver, deliverAfterMs);
    else deliver();
    return issued;
  }

  fail(error: unknown): void {
    this.settle();
    this.rejectFn(error);
  }

  private settle(): void {
    if (this.settled) throw new Error(`call ${this.kind} already settled`);
    this.settled = true;
  }
}

/** Decides each call's fate as it is made; leave it pending by not settling it. */
export type Responder = (call: StubCall) => void;

/** A `TokenEndpoint` whose calls are recorded and settled by the test. */
let stubs = 0;

export class StubEndpoint implements TokenEndpoint {
  readonly calls: StubCall[] = [];
  readonly issued = new Map<string, Issued>();
  responder: Responder | undefined;
  /** The upstream's clock runs this far ahead of the true clock. */
  skewMs = 0;
  /** The true time; `Date.now()` unless the test says the local wall clock is wrong. */
  trueNow: () => number = () => Date.now();
  defaults: TokenSpec = {};
  /** Like the real client: `close()` rejects every pending call with `SHUTDOWN`. */
  abortOnClose = true;
  closed = false;
  private counter = 0;
  /** Tokens of different stubs never look alike, as two upstream answers never would. */
  private readonly stubId = ++stubs;

  constructor(responder?: Responder) {
    this.responder = responder;
  }

  getToken(): Promise<UpstreamTokenResponse> {
    return this.call('get', undefined);
  }

  refreshToken(refreshToken: string): Promise<UpstreamTokenResponse> {
    return this.call('refresh', refreshToken);
  }

  close(): void {
    this.closed = true;
    if (!this.abortOnClose) return;
    for (const call of this.pending()) call.fail(new TransferAuthError('SHUTDOWN', 'aborted by close()'));
  }

  get count(): number {
    return this.calls.length;
  }

  kinds(): CallKind[] {
    return this.calls.map((c) => c.kind);
  }

  pending(): StubCall[] {
    return this.calls.filter((c) => !c.settled);
  }

  last(): StubCall {
    const call = this.calls[this.calls.length - 1];
    if (call === undefined) throw new Error('no call yet');
    return call;
  }

  issue(spec: TokenSpec): Issued {
    const n = ++this.counter;
    const lifetimeMs = spec.lifetimeMs ?? this.defaults.lifetimeMs ?? 600_000;
    const issued: Issued = {
      accessToken: `ACCESS-${n}-c0ffee${this.stubId}`,
      refreshToken: `REFRESH-${n}-bead5${this.stubId}`,
      lifetimeMs,
      trueExpiresAtMs: this.trueNow() + lifetimeMs,
    };
    this.issued.set(issued.accessToken, issued);
    return issued;
  }

  /** Every token and refresh token issued so far. */
  secrets(): string[] {
    return [...this.issued.values()].flatMap((i) => [i.accessToken, i.refreshToken]);
  }

  private call(kind: CallKind, refreshToken: string | undefined): Promise<UpstreamTokenResponse> {
    if (this.closed) return Promise.reject(new TransferAuthError('SHUTDOWN', 'closed'));
    const call = new StubCall(this, kind, refreshToken);
    this.calls.push(call);
    this.responder?.(call);
    return call.promise;
  }
}

/** Convenience responders. */
export const answer = {
  ok:
    (spec: TokenSpec = {}): Responder =>
    (call) =>
      call.succeed(spec),
  fail:
    (code: TransferAuthError['code'], status?: number, retryAfterMs?: number): Responder =>
    (call) =>
      call.fail(upstreamError(code, status, retryAfterMs)),
  pending: (): Responder => () => undefined,
};

export function upstreamError(
  code: TransferAuthError['code'],
  status?: number,
  retryAfterMs?: number,
): TransferAuthError {
  return new TransferAuthError(code, `stub says ${code}${status === undefined ? '' : ` (HTTP ${status})`}`, {
    status,
    retryAfterMs,
  });
}

export interface Recorder extends LifecycleHooks {
  logs: { level: 'log' | 'warn' | 'error'; message: string; atMs: number }[];
  debug: string[];
  events: TransferAuthEvent[];
}

export function recorder(): Recorder {
  const logs: Recorder['logs'] = [];
  const events: TransferAuthEvent[] = [];
  const debug: string[] = [];
  return {
    logs,
    events,
    debug,
    // Debug lines (one per token installed) are kept apart: the tests of warnings count `logs`.
    log: (level, message) =>
      level === 'debug' ? debug.push(message) : logs.push({ level, message, atMs: Date.now() }),
    emit: (event) => events.push(event),
  };
}

export interface Harness {
  lifecycle: TokenLifecycle;
  stub: StubEndpoint;
  hooks: Recorder;
}

/** A lifecycle on the stub, with deterministic jitter (`random` 0.5 unless told). */
export function harness(
  options: Partial<TransferAuthModuleOptions> = {},
  responder: Responder | undefined = answer.ok(),
  random: () => number = () => 0.5,
): Harness {
  const resolved = resolveTransferAuthOptions({ agentId: 'agent-1', agentSecret: 'agent-secret-xyz', ...options });
  const stub = new StubEndpoint(responder);
  const hooks = recorder();
  const lifecycle = new TokenLifecycle(resolved, { endpoint: stub, hooks, random, store: resolved.store });
  return { lifecycle, stub, hooks };
}

/** Lets every settled promise run its continuations (a real macrotask boundary under fake timers). */
export function flush(): Promise<void> {
  return jest.advanceTimersByTimeAsync(0);
}

/** Settles `promise` into a value or an error, without an unhandled rejection. */
export function outcome<T>(promise: Promise<T>): { settled: () => boolean; value: () => T; error: () => unknown } {
  let state: { kind: 'pending' } | { kind: 'ok'; value: T } | { kind: 'err'; error: unknown } = { kind: 'pending' };
  promise.then(
    (value) => (state = { kind: 'ok', value }),
    (error: unknown) => (state = { kind: 'err', error }),
  );
  return {
    settled: () => state.kind !== 'pending',
    value: () => {
      if (state.kind !== 'ok') throw new Error(`expected a value, state ${state.kind}`);
      return state.value;
    },
    error: () => {
      if (state.kind !== 'err') throw new Error(`expected an error, state ${state.kind}`);
      return state.error;
    },
  };
}

/** Awaits `promise` under fake timers, advancing them in steps until it settles (backoff sleeps included). */
export async function drive<T>(promise: Promise<T>, stepMs = 50, maxSteps = 10_000): Promise<T> {
  const result = outcome(promise);
  await flush();
  for (let i = 0; i < maxSteps && !result.settled(); i++) await jest.advanceTimersByTimeAsync(stepMs);
  if (!result.settled()) throw new Error(`still pending after ${stepMs * maxSteps} ms of fake time`);
  return promise;
}
