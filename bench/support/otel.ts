import { context, metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

/** A metric reader that collects only when asked (a Prometheus exporter is one such: it reads on scrape). */
class PullReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** How an SDK stands in the process while one side of a case runs. */
export type SdkState = 'none' | 'registered' | 'entered';

/** What the SDK got, summed over everything the module recorded through it. */
export interface SdkRecorded {
  /** Data points, by metric name, then by the registration name (`freedompay.transfer.auth.name`). */
  readonly points: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Ended spans, by registration name. */
  readonly spans: ReadonlyMap<string, number>;
}

const NAME_ATTRIBUTE = 'freedompay.transfer.auth.name';

/** Unregisters every global of `@opentelemetry/api`: what a process without an SDK has. */
export function clearOpenTelemetryGlobals(): void {
  metrics.disable();
  trace.disable(); // also gives the API a fresh proxy tracer provider: tracers handed out before stay noop
  context.disable(); // and the context manager's AsyncLocalStorage with it (its async hooks off)
  propagation.disable();
}

/**
 * The OpenTelemetry SDK as an app registers it: a MeterProvider with a reader, a BasicTracerProvider
 * with a batch span processor, an AsyncLocalStorage context manager. `shutdown()` it.
 */
export class OpenTelemetrySdk {
  private readonly reader = new PullReader();
  private readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  private readonly exporter = new InMemorySpanExporter();
  private readonly processor = new BatchSpanProcessor(this.exporter, { maxQueueSize: 100_000 });
  private readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [this.processor] });
  private readonly contextManager = new AsyncLocalStorageContextManager();

  /**
   * Puts the process in `state`: `none`, no global registered; `registered`, the SDK's providers and
   * context manager registered globally, the context manager not entered yet (its AsyncLocalStorage, and
   * Node's async hooks with it, off); `entered`, registered and entered once, as it is after the first
   * instrumented call (the module's first upstream call does it): from then on, Node 20 runs a promise
   * hook on every promise of the process.
   */
  enter(state: SdkState): void {
    clearOpenTelemetryGlobals();
    if (state === 'none') return;
    metrics.setGlobalMeterProvider(this.meterProvider);
    trace.setGlobalTracerProvider(this.tracerProvider);
    context.setGlobalContextManager(this.contextManager.enable());
    if (state === 'entered') context.with(ROOT_CONTEXT, () => undefined);
  }

  /** Everything recorded so far (cumulative). */
  async recorded(): Promise<SdkRecorded> {
    const { resourceMetrics } = await this.reader.collect();
    const points = new Map<string, Map<string, number>>();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        const byName = points.get(metric.descriptor.name) ?? new Map<string, number>();
        points.set(metric.descriptor.name, byName);
        for (const point of metric.dataPoints) {
          const name = String(point.attributes[NAME_ATTRIBUTE]);
          byName.set(name, (byName.get(name) ?? 0) + count(metric, point.value));
        }
      }
    }
    await this.processor.forceFlush();
    const spans = new Map<string, number>();
    for (const span of this.exporter.getFinishedSpans()) {
      const name = String(span.attributes[NAME_ATTRIBUTE]);
      spans.set(name, (spans.get(name) ?? 0) + 1);
    }
    return { points, spans };
  }

  async shutdown(): Promise<void> {
    clearOpenTelemetryGlobals();
    await Promise.all([this.meterProvider.shutdown(), this.tracerProvider.shutdown()]);
  }
}

/** A counter's value, a histogram's count of recordings, 1 for a gauge's observation. */
function count(metric: MetricData, value: unknown): number {
  if (metric.dataPointType === DataPointType.SUM) return Number(value);
  if (metric.dataPointType === DataPointType.HISTOGRAM) return Number((value as { count: number }).count);
  return 1;
}
