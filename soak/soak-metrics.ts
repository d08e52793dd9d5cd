import { metrics, type Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  MeterProvider,
  MetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * What `npm run soak -- --metrics-out <file>` writes: the package's metrics, read from an OpenTelemetry
 * `MeterProvider` every `intervalMs` of the run, and the run's parameters and results. Counters are
 * cumulative (since the start), histograms are per interval (delta), gauges are the value at the read.
 */
export interface SoakMetricsFile {
  readonly run: Readonly<Record<string, unknown>>;
  readonly intervalMs: number;
  readonly temporality: { readonly sums: 'cumulative'; readonly histograms: 'delta' };
  readonly samples: readonly SoakMetricsSample[];
}

export interface SoakMetricsSample {
  /** Seconds since the callers started. */
  readonly t: number;
  readonly points: readonly SoakMetricPoint[];
}

/** One series of one instrument at one read. */
export interface SoakMetricPoint {
  /** The OpenTelemetry name, e.g. `freedompay.transfer.auth.renewals`. */
  readonly metric: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** Counters (since the start) and gauges (now). */
  readonly value?: number;
  /** Histograms: what was recorded since the previous read. */
  readonly histogram?: SoakHistogram;
}

export interface SoakHistogram {
  readonly count: number;
  readonly sum: number;
  readonly min?: number | undefined;
  readonly max?: number | undefined;
  /** Upper bounds of the buckets; `counts` has one more entry (the +Inf bucket). */
  readonly boundaries: readonly number[];
  readonly counts: readonly number[];
}

/** The series of one instrument, as the JSON file keeps them. */
function pointsOf(metric: MetricData): SoakMetricPoint[] {
  const name = metric.descriptor.name;
  const attributesOf = (attributes: Attributes): SoakMetricPoint['attributes'] =>
    attributes as SoakMetricPoint['attributes'];
  switch (metric.dataPointType) {
    case DataPointType.HISTOGRAM:
      return metric.dataPoints.map(({ attributes, value: { count, sum, min, max, buckets } }) => ({
        metric: name,
        attributes: attributesOf(attributes),
        histogram: { count, sum: sum ?? 0, min, max, boundaries: buckets.boundaries, counts: buckets.counts },
      }));
    case DataPointType.SUM:
    case DataPointType.GAUGE:
      return metric.dataPoints.map(({ attributes, value }) => ({
        metric: name,
        attributes: attributesOf(attributes),
        value,
      }));
    default:
      return [];
  }
}

/** A pull reader: the sampler collects through it. Histograms per interval, everything else cumulative. */
class SamplingReader extends MetricReader {
  constructor() {
    super({
      aggregationTemporalitySelector: (type) =>
        type === InstrumentType.HISTOGRAM ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE,
    });
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Registers a global `MeterProvider` (before the app is created: the package takes its meter then) and
 * reads it every `intervalMs` once {@link start} is called, keeping the points of the meters whose name
 * starts with `scopePrefix`.
 */
export class MetricsSampler {
  private readonly reader = new SamplingReader();
  private readonly provider = new MeterProvider({ readers: [this.reader] });
  private readonly samples: SoakMetricsSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    readonly intervalMs: number,
    private readonly scopePrefix: string,
  ) {
    if (!metrics.setGlobalMeterProvider(this.provider)) throw new Error('a global MeterProvider is already set');
  }

  /** Reads now (t = 0) and then every `intervalMs`. */
  start(startedAt: number): void {
    this.startedAt = startedAt;
    this.read();
    this.timer = setInterval(() => this.read(), this.intervalMs).unref(); // never what keeps the soak alive
  }

  /** Reads once more, stops reading, and shuts the provider down. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.read();
    await this.pending;
    metrics.disable();
    await this.provider.shutdown();
  }

  get count(): number {
    return this.samples.length;
  }

  write(path: string, run: Record<string, unknown>): void {
    const file: SoakMetricsFile = {
      run,
      intervalMs: this.intervalMs,
      temporality: { sums: 'cumulative', histograms: 'delta' },
      samples: this.samples,
    };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(file)}\n`);
  }

  private read(): void {
    const t = Math.round(performance.now() - this.startedAt) / 1000;
    this.pending = this.pending
      .then(() => this.reader.collect())
      .then(({ resourceMetrics }) => {
        const scopes = resourceMetrics.scopeMetrics.filter(({ scope }) => scope.name.startsWith(this.scopePrefix));
        this.samples.push({ t, points: scopes.flatMap(({ metrics: read }) => read.flatMap(pointsOf)) });
      })
      .catch((error: unknown) => {
        console.error(`metrics read failed: ${error instanceof Error ? error.message : String(error)}`);
      });
  }
}
