import { context, metrics, trace, type Attributes, type AttributeValue } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type {
  StoredTransferToken,
  TransferAuthModuleOptions,
  TransferTokenStore,
  TransferTokenStoreLock,
} from 'nestjs-freedompay-transfer-auth';
import { createAuthApp, trackFakesAndApps, type AuthApp, type FakesAndApps } from '../support/auth-app';

/** The meter's and the tracer's name: the package's (the contract, spelled out, not imported from lib). */
export const SCOPE = 'nestjs-freedompay-transfer-auth';

/** The metric names the issue and the contract promise. */
export const M = Object.freeze({
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

/** Attribute keys. */
export const A = Object.freeze({
  name: 'freedompay.transfer.auth.name',
  agentId: 'freedompay.transfer.agent.id',
  kind: 'freedompay.transfer.auth.kind',
  outcome: 'freedompay.transfer.auth.outcome',
  storeOperation: 'freedompay.transfer.auth.store.operation',
  errorType: 'error.type',
});

/** What a test filters points by: every key given must match; `undefined` means "absent". */
export type AttributeFilter = Record<string, AttributeValue | undefined>;

/**
 * A metric reader whose `collect()` the test calls: nothing is exported on a timer. Sums and histograms
 * are cumulative (totals since the start); observable gauges are read as delta, so that a gauge whose
 * callback is gone reports nothing (a cumulative reader of the SDK repeats the last value it saw).
 */
class TestMetricReader extends MetricReader {
  constructor() {
    super({
      aggregationTemporalitySelector: (type) =>
        type === InstrumentType.OBSERVABLE_GAUGE ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE,
    });
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface HistogramSummary {
  count: number;
  sum: number;
  min: number | undefined;
  max: number | undefined;
  boundaries: number[];
  counts: number[];
}

function matches(attributes: Attributes, filter: AttributeFilter): boolean {
  return Object.entries(filter).every(([key, value]) =>
    value === undefined ? !(key in attributes) : attributes[key] === value,
  );
}

/** One collection of the package's scope: metrics by name, points by attributes. */
export class Collected {
  constructor(readonly metrics: readonly MetricData[]) {}

  names(): string[] {
    return this.metrics.map((m) => m.descriptor.name).sort();
  }

  /** The metric called `name`; fails the test when the SDK did not report it. */
  metric(name: string): MetricData {
    const found = this.metrics.filter((m) => m.descriptor.name === name);
    if (found.length !== 1) {
      throw new Error(`Expected one metric named ${name}, found ${found.length} (have: ${this.names().join(', ')}).`);
    }
    return found[0] as MetricData;
  }

  /** Points of `name` whose attributes match `filter` (none when the metric is not reported at all). */
  points(name: string, filter: AttributeFilter = {}): DataPoint<unknown>[] {
    const metric = this.metrics.find((m) => m.descriptor.name === name);
    if (metric === undefined) return [];
    return (metric.dataPoints as DataPoint<unknown>[]).filter((p) => matches(p.attributes, filter));
  }

  /** The counter's total over the points matching `filter` (0 when none). */
  sum(name: string, filter: AttributeFilter = {}): number {
    const metric = this.metrics.find((m) => m.descriptor.name === name);
    if (metric !== undefined && metric.dataPointType !== DataPointType.SUM) {
      throw new Error(`${name} is not a sum (it is ${DataPointType[metric.dataPointType]}).`);
    }
    return this.points(name, filter).reduce((total, p) => total + (p.value as number), 0);
  }

  /** The one histogram point matching `filter`; fails when there is not exactly one. */
  histogram(name: string, filter: AttributeFilter = {}): HistogramSummary {
    const metric = this.metric(name);
    if (metric.dataPointType !== DataPointType.HISTOGRAM) {
      throw new Error(`${name} is not a histogram (it is ${DataPointType[metric.dataPointType]}).`);
    }
    const points = this.points(name, filter);
    if (points.length !== 1) {
      throw new Error(`Expected one ${name} point matching ${JSON.stringify(filter)}, found ${points.length}.`);
    }
    const value = (points[0] as DataPoint<Histogram>).value;
    return {
      count: value.count,
      sum: value.sum ?? Number.NaN,
      min: value.min,
      max: value.max,
      boundaries: [...value.buckets.boundaries],
      counts: [...value.buckets.counts],
    };
  }

  /** The histogram's count over every point matching `filter` (0 when none). */
  count(name: string, filter: AttributeFilter = {}): number {
    return this.points(name, filter).reduce((total, p) => total + (p.value as Histogram).count, 0);
  }

  /** The gauge's values matching `filter`. */
  gauge(name: string, filter: AttributeFilter = {}): number[] {
    return this.points(name, filter).map((p) => p.value as number);
  }

  /** Every point of every metric: its metric's name and its attributes (for "every point carries ..."). */
  allPoints(): { metric: string; attributes: Attributes }[] {
    return this.metrics.flatMap((m) =>
      (m.dataPoints as DataPoint<unknown>[]).map((p) => ({ metric: m.descriptor.name, attributes: p.attributes })),
    );
  }
}

/**
 * Global OpenTelemetry providers for one test: a `MeterProvider` read by a reader whose `collect()` the
 * test calls, a `BasicTracerProvider` exporting to memory (simple processor: a span is there once it
 * ended), and an AsyncLocalStorage context manager. Install before the app is created (the package takes
 * its meter when the module initialises); `teardown()` after the app is closed.
 */
export class TelemetryHarness {
  readonly reader = new TestMetricReader();
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  readonly spanExporter = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spanExporter)] });

  static install(): TelemetryHarness {
    const harness = new TelemetryHarness();
    // Leftovers of a test that failed before its teardown must not swallow this registration.
    metrics.disable();
    trace.disable();
    context.disable();
    if (!metrics.setGlobalMeterProvider(harness.meterProvider)) throw new Error('MeterProvider not registered');
    if (!trace.setGlobalTracerProvider(harness.tracerProvider)) throw new Error('TracerProvider not registered');
    if (!context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())) {
      throw new Error('ContextManager not registered');
    }
    return harness;
  }

  /** Collects now (observable gauges are read now) and keeps the package's scope only. */
  async collect(): Promise<Collected> {
    // Caller waits are recorded once the callers have resumed (a setImmediate): let that run first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw new Error(`Metric collection failed: ${errors.map(String).join('; ')}`);
    const scopes = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === SCOPE);
    return new Collected(scopes.flatMap((s) => s.metrics));
  }

  /** Ended spans of the package's tracer, oldest first. */
  spans(): ReadableSpan[] {
    return this.spanExporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === SCOPE);
  }

  /** Every ended span, whatever its tracer (the test's own `caller` spans included). */
  allSpans(): ReadableSpan[] {
    return this.spanExporter.getFinishedSpans();
  }

  async teardown(): Promise<void> {
    metrics.disable();
    trace.disable();
    context.disable();
    await this.meterProvider.shutdown().catch(() => undefined);
    await this.tracerProvider.shutdown().catch(() => undefined);
  }
}

/** A plain rendering of a span: everything it would export, for secret checks and messages. */
export function spanRecord(span: ReadableSpan): Record<string, unknown> {
  return {
    name: span.name,
    kind: span.kind,
    attributes: span.attributes,
    status: span.status,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes ?? {} })),
    links: span.links.map((l) => ({ attributes: l.attributes ?? {} })),
    parent: span.parentSpanContext?.spanId,
    scope: span.instrumentationScope,
    resource: span.resource.attributes,
  };
}

export type StoreOperationName = 'read' | 'write' | 'lock';

/** The error a {@link ControllableStore} fails with: its name is what `error.type` should say. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

/**
 * An in-memory {@link TransferTokenStore}, shared by as many apps as are given it, that the test can make
 * fail (`fail`: reject with {@link StoreUnavailableError}) or hang (`hang`: never answer until
 * {@link releaseHung}) per operation. Counts its calls.
 */
export class ControllableStore implements TransferTokenStore {
  readonly fail = new Set<StoreOperationName>();
  readonly hang = new Set<StoreOperationName>();
  readonly calls: Record<StoreOperationName, number> = { read: 0, write: 0, lock: 0 };
  private readonly entries = new Map<string, StoredTransferToken>();
  private readonly locks = new Map<string, symbol>();
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly hung: (() => void)[] = [];

  read(key: string): Promise<StoredTransferToken | undefined> {
    return this.answer('read', () => this.entries.get(key));
  }

  write(key: string, entry: StoredTransferToken): Promise<boolean> {
    return this.answer('write', () => {
      if (entry.version !== (this.entries.get(key)?.version ?? 0) + 1) return false;
      this.entries.set(key, entry);
      for (const onChange of this.watchers.get(key) ?? []) queueMicrotask(onChange);
      return true;
    });
  }

  lock(key: string): Promise<TransferTokenStoreLock | undefined> {
    return this.answer('lock', () => {
      if (this.locks.has(key)) return undefined;
      const id = Symbol(key);
      this.locks.set(key, id);
      return {
        release: () => {
          if (this.locks.get(key) === id) this.locks.delete(key);
          return Promise.resolve();
        },
      };
    });
  }

  watch(key: string, onChange: () => void): () => void {
    const set = this.watchers.get(key) ?? new Set();
    this.watchers.set(key, set.add(onChange));
    return () => set.delete(onChange);
  }

  /** Whether an entry is stored (the test never reads the tokens in it). */
  get size(): number {
    return this.entries.size;
  }

  /** Whether a renewal lock is held now. */
  get locked(): boolean {
    return this.locks.size > 0;
  }

  /** Answers every hung call (with "nothing"), so that no promise is left pending. */
  releaseHung(): void {
    for (const answer of this.hung.splice(0)) answer();
  }

  private answer<T>(operation: StoreOperationName, result: () => T): Promise<T> {
    this.calls[operation]++;
    if (this.hang.has(operation)) {
      return new Promise<T>((_, reject) => this.hung.push(() => reject(new StoreUnavailableError('released'))));
    }
    if (this.fail.has(operation)) return Promise.reject(new StoreUnavailableError(`${operation} failed`));
    return Promise.resolve(result());
  }
}

/** What {@link telemetryRig} hands a describe block. */
export interface TelemetryRig extends Pick<FakesAndApps, 'fakeServer' | 'close'> {
  /** The current test's providers. */
  readonly harness: TelemetryHarness;
  /** {@link createAuthApp}, closed after the test. */
  boot(options: TransferAuthModuleOptions, name?: string): Promise<AuthApp>;
  /** A {@link ControllableStore} whose hung calls are released once the apps are closed. */
  store(): ControllableStore;
}

/**
 * For a describe block: a {@link TelemetryHarness} installed before each test; after it, the apps closed,
 * the stores' hung calls released, the fakes stopped, and then the harness torn down.
 */
export function telemetryRig(): TelemetryRig {
  let harness: TelemetryHarness | undefined;
  const stores: ControllableStore[] = [];
  beforeEach(() => {
    harness = TelemetryHarness.install();
  });
  const { fakeServer, track, close } = trackFakesAndApps(() => {
    for (const s of stores.splice(0)) s.releaseHung();
  });
  // After the hook above: Jest runs one block's afterEach hooks in the order they were declared.
  afterEach(async () => {
    await harness?.teardown();
    harness = undefined;
  });
  return {
    get harness(): TelemetryHarness {
      if (harness === undefined) throw new Error('no telemetry harness outside a test');
      return harness;
    },
    fakeServer,
    close,
    boot: async (options, name) => track(await createAuthApp(options, name)),
    store: () => {
      const created = new ControllableStore();
      stores.push(created);
      return created;
    },
  };
}
