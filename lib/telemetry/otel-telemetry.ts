import type * as Api from '@opentelemetry/api';
import type { TransferAuthErrorCode } from '../errors/transfer-auth.error';
import { packageVersion } from '../utils/package-version';
import type { Attributes, Counter, Histogram, Meter, ObservableCallback } from '@opentelemetry/api';
import {
  NO_TELEMETRY,
  type InvalidationResult,
  type LockOutcome,
  type ObservedState,
  type StoreOperation,
  type Telemetry,
  type UpstreamKind,
  type UpstreamOutcome,
  type UpstreamRequest,
} from './telemetry';

/** The meter's and the tracer's name: the package's. */
export const INSTRUMENTATION_NAME = 'nestjs-freedompay-transfer-auth';

/** @internal Attribute keys: namespaced, lowercase, dot-separated. */
export const ATTR = Object.freeze({
  name: 'freedompay.transfer.auth.name',
  agentId: 'freedompay.transfer.agent.id',
  kind: 'freedompay.transfer.auth.kind',
  outcome: 'freedompay.transfer.auth.outcome',
  storeOperation: 'freedompay.transfer.auth.store.operation',
  errorType: 'error.type',
});

/**
 * @internal Metric names. A name measured in seconds ends in `_seconds` itself: Prometheus wants the unit
 * in the name, and the JS Prometheus exporter (0.2xx) writes the unit only in a `# UNIT` line (it adds
 * `_total` to counters, nothing else); exporters that do append units (the Collector's, Prometheus' OTLP
 * receiver) leave a name that already ends in its unit as it is. Counters have no `_total`: it is added.
 */
export const METRIC = Object.freeze({
  renewals: 'freedompay.transfer.auth.renewals',
  renewalDuration: 'freedompay.transfer.auth.renewal.duration_seconds',
  accessTimeLeft: 'freedompay.transfer.auth.access_token.time_left_seconds',
  accessExpiration: 'freedompay.transfer.auth.access_token.expiration_timestamp_seconds',
  refreshTimeLeft: 'freedompay.transfer.auth.refresh_token.time_left_seconds',
  waitDuration: 'freedompay.transfer.auth.wait.duration_seconds',
  callerErrors: 'freedompay.transfer.auth.caller.errors',
  invalidations: 'freedompay.transfer.auth.invalidations',
  adoptions: 'freedompay.transfer.auth.store.adoptions',
  locks: 'freedompay.transfer.auth.store.locks',
  storeErrors: 'freedompay.transfer.auth.store.errors',
  degraded: 'freedompay.transfer.auth.store.degraded',
});

/** @internal Span names of the two upstream calls. */
export const SPAN = Object.freeze({ login: 'freedompay.transfer.auth', refresh: 'freedompay.transfer.auth.refresh' });

/**
 * @internal The outcomes the shipped alert rules count, created at 0 with the telemetry so that
 * Prometheus' `increase()` sees their first event (it ignores a series' first sample): every error code a
 * Get token, a Refresh token or a caller can end with, and `ok` for the two calls. `SHUTDOWN` is left
 * out: the rules ignore it.
 */
export const INITIAL_OUTCOMES = Object.freeze({
  login: ['ok', 'UPSTREAM_UNAVAILABLE', 'INVALID_RESPONSE', 'INVALID_CREDENTIALS', 'SECRET_UNAVAILABLE'],
  refresh: ['ok', 'UPSTREAM_UNAVAILABLE', 'INVALID_RESPONSE', 'INVALID_CREDENTIALS'],
  callers: ['UPSTREAM_UNAVAILABLE', 'INVALID_RESPONSE', 'INVALID_CREDENTIALS', 'SECRET_UNAVAILABLE'],
} satisfies Record<UpstreamKind | 'callers', readonly (TransferAuthErrorCode | 'ok')[]>);

/** Upstream calls take milliseconds to the request timeout (10 s by default). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** @internal Who the instruments speak for. */
export interface TelemetryIdentity {
  /** The registration's `name`; `default` for the unnamed one. */
  readonly name: string;
  /** Only with `telemetry: { agentIdAttribute: true }`. */
  readonly agentId: string | undefined;
}

let api: typeof Api | null | undefined;

/** `@opentelemetry/api` when it is installed (an optional peer), else `null`: looked up once. */
export function loadOpenTelemetry(): typeof Api | null {
  if (api === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require('@opentelemetry/api') as typeof Api;
    } catch {
      api = null;
    }
  }
  return api;
}

/**
 * @internal The registration's telemetry: the global meter and tracer providers of `@opentelemetry/api`
 * (nothing is recorded until an SDK registers them), or nothing at all without the package.
 */
export function createTelemetry(identity: TelemetryIdentity, otel = loadOpenTelemetry()): Telemetry {
  if (otel === null) return NO_TELEMETRY;
  try {
    return new OpenTelemetry(otel, identity);
  } catch {
    return NO_TELEMETRY; // a provider that fails to make instruments never fails the module
  }
}

/** Runs what records a measurement: an SDK that throws never reaches a renewal or a caller. */
function quietly(record: () => void): void {
  try {
    record();
  } catch {
    // telemetry is never worth a failed renewal
  }
}

class OpenTelemetry implements Telemetry {
  readonly timesWaits = true;
  private readonly base: Attributes;
  private readonly tracer: Api.Tracer;
  private readonly meter: Meter;
  private readonly renewals: Counter;
  private readonly renewalDuration: Histogram;
  private readonly waitDuration: Histogram;
  private readonly callerErrors: Counter;
  private readonly invalidations: Counter;
  private readonly adoptions: Counter;
  private readonly locks: Counter;
  private readonly storeErrors: Counter;

  constructor(
    private readonly otel: typeof Api,
    identity: TelemetryIdentity,
  ) {
    this.base = Object.freeze({
      [ATTR.name]: identity.name,
      ...(identity.agentId === undefined ? {} : { [ATTR.agentId]: identity.agentId }),
    });
    const version = packageVersion();
    this.meter = otel.metrics.getMeter(INSTRUMENTATION_NAME, version);
    this.tracer = otel.trace.getTracer(INSTRUMENTATION_NAME, version);
    const m = this.meter;
    this.renewals = m.createCounter(METRIC.renewals, {
      description:
        'Upstream token calls (Get token: login, Refresh token: refresh), by outcome: ok or the error code (SECRET_UNAVAILABLE: a login never sent, the secret provider failed).',
      unit: '{renewal}',
    });
    this.renewalDuration = m.createHistogram(METRIC.renewalDuration, {
      description: 'Duration of upstream token calls, from sending the request to a validated answer.',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.waitDuration = m.createHistogram(METRIC.waitDuration, {
      description: 'How long callers waited for a token when none usable was cached (0 when refused at once).',
      unit: 's',
      advice: { explicitBucketBoundaries: [0, ...DURATION_BUCKETS] },
    });
    this.callerErrors = m.createCounter(METRIC.callerErrors, {
      description: 'Callers that got an error instead of a token (no usable token cached), by outcome: the error code.',
      unit: '{caller}',
    });
    this.invalidations = m.createCounter(METRIC.invalidations, {
      description:
        'invalidate(token) calls (a Transfer call answered 401): dropped the token, or ignored it as stale or too soon.',
      unit: '{invalidation}',
    });
    this.adoptions = m.createCounter(METRIC.adoptions, {
      description: 'Tokens taken from the shared store, renewed by another process.',
      unit: '{token}',
    });
    this.locks = m.createCounter(METRIC.locks, {
      description: 'Attempts to take the renewal lock of the shared store: acquired, busy (another holder) or down.',
      unit: '{attempt}',
    });
    this.storeErrors = m.createCounter(METRIC.storeErrors, {
      description: 'Shared-store calls that failed or timed out, by operation.',
      unit: '{error}',
    });
    quietly(() => this.startAtZero());
  }

  /** The series the alert rules read, at 0 before anything happened: see {@link INITIAL_OUTCOMES}. */
  private startAtZero(): void {
    for (const kind of ['login', 'refresh'] as const) {
      for (const outcome of INITIAL_OUTCOMES[kind]) {
        this.renewals.add(0, { ...this.base, [ATTR.kind]: kind, [ATTR.outcome]: outcome });
      }
    }
    for (const outcome of INITIAL_OUTCOMES.callers) this.callerErrors.add(0, { ...this.base, [ATTR.outcome]: outcome });
  }

  activeContext(): unknown {
    return this.otel.context.active();
  }

  upstream<T>(
    request: UpstreamRequest,
    parent: unknown,
    call: () => Promise<T>,
    outcomeOf: (result: { value: T } | { error: unknown }) => UpstreamOutcome,
  ): Promise<T> {
    const { context, trace } = this.otel;
    const parentContext = (parent as Api.Context | undefined) ?? this.otel.ROOT_CONTEXT;
    let span: Api.Span;
    try {
      span = this.startSpan(request, parentContext);
    } catch {
      return call(); // an SDK that fails to start a span never fails the call
    }
    const started = performance.now();
    const finish = (outcome: UpstreamOutcome): void =>
      quietly(() => this.finishUpstream(span, request.kind, started, outcome));
    // The call runs in the span's context: an HTTP instrumentation's span nests under it.
    return context.with(trace.setSpan(parentContext, span), call).then(
      (value) => {
        finish(outcomeOf({ value }));
        return value;
      },
      (error: unknown) => {
        finish(outcomeOf({ error }));
        throw error;
      },
    );
  }

  private startSpan(request: UpstreamRequest, parentContext: Api.Context): Api.Span {
    const url = new URL(request.url);
    return this.tracer.startSpan(
      SPAN[request.kind],
      {
        kind: this.otel.SpanKind.CLIENT,
        attributes: {
          ...this.base,
          [ATTR.kind]: request.kind,
          'http.request.method': request.method,
          'server.address': url.hostname,
          'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
          'url.full': `${url.origin}${url.pathname}`,
        },
      },
      parentContext,
    );
  }

  /** Counts the call, records its duration, and ends its span with its status and error type. */
  private finishUpstream(span: Api.Span, kind: UpstreamKind, started: number, outcome: UpstreamOutcome): void {
    const attributes = { ...this.base, [ATTR.kind]: kind, [ATTR.outcome]: outcome.code ?? 'ok' };
    this.renewals.add(1, attributes);
    this.renewalDuration.record((performance.now() - started) / 1000, attributes);
    if (outcome.status !== undefined) span.setAttribute('http.response.status_code', outcome.status);
    if (outcome.code !== undefined) {
      // An HTTP error is named by its status, as HTTP client spans do; anything else by the error code.
      const type = outcome.status !== undefined && outcome.status >= 400 ? String(outcome.status) : outcome.code;
      span.setAttribute(ATTR.errorType, type);
      span.setStatus({ code: this.otel.SpanStatusCode.ERROR, message: outcome.code });
    }
    span.end();
  }

  loginNotSent(code: string): void {
    quietly(() => this.renewals.add(1, { ...this.base, [ATTR.kind]: 'login', [ATTR.outcome]: code }));
  }

  callersWaited(seconds: readonly number[], outcome: string): void {
    const attributes = { ...this.base, [ATTR.outcome]: outcome };
    quietly(() => {
      seconds.forEach((waited) => this.waitDuration.record(waited, attributes));
      if (outcome !== 'ok') this.callerErrors.add(seconds.length, attributes);
    });
  }

  invalidated(result: InvalidationResult): void {
    quietly(() => this.invalidations.add(1, { ...this.base, [ATTR.outcome]: result }));
  }

  adopted(): void {
    quietly(() => this.adoptions.add(1, this.base));
  }

  lock(outcome: LockOutcome): void {
    quietly(() => this.locks.add(1, { ...this.base, [ATTR.outcome]: outcome }));
  }

  storeFailed(operation: StoreOperation, errorType: string): void {
    quietly(() =>
      this.storeErrors.add(1, { ...this.base, [ATTR.storeOperation]: operation, [ATTR.errorType]: errorType }),
    );
  }

  observe(state: ObservedState): () => void {
    try {
      return this.observeGauges(state);
    } catch {
      return () => undefined; // no gauges rather than a failed module
    }
  }

  private observeGauges(state: ObservedState): () => void {
    const gauge = (name: string, description: string, unit: string, read: () => number | undefined): (() => void) => {
      const instrument = this.meter.createObservableGauge(name, { description, unit });
      const callback: ObservableCallback = (result) => {
        const value = read();
        if (value !== undefined) result.observe(value, this.base);
      };
      instrument.addCallback(callback);
      return () => instrument.removeCallback(callback);
    };
    const stops = [
      gauge(
        METRIC.accessTimeLeft,
        'Seconds until the cached access token stops being served (access_expire_at less the safety window), counted on the local clocks it was placed on from the upstream Date header; 0 with none cached.',
        's',
        () => state.accessSecondsLeft(),
      ),
      gauge(
        METRIC.accessExpiration,
        'When the cached access token stops being served, as a Unix time in seconds on the local clock it was placed on (access_expire_at less the safety window); 0 with none cached.',
        's',
        () => state.accessExpiresAt(),
      ),
      gauge(
        METRIC.refreshTimeLeft,
        'Seconds until the refresh token this process holds stops being used (refresh_expire_at less the safety window); 0 with none.',
        's',
        () => state.refreshSecondsLeft(),
      ),
      gauge(
        METRIC.degraded,
        '1 while the shared token store does not answer (each process renews alone), else 0.',
        '1',
        () => state.degraded(),
      ),
    ];
    return () => stops.forEach((stop) => quietly(stop));
  }
}
