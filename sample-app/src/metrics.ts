import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** The sample's `service.name`: Prometheus shows it in `target_info` (else `unknown_service:node`). */
export const SAMPLE_SERVICE_NAME = 'freedompay-transfer-auth-sample';

/** Injection token of the app's {@link SampleMetrics}, served by `GET /metrics`. */
export const SAMPLE_METRICS = Symbol('SAMPLE_METRICS');

/** The OpenTelemetry metrics SDK of the sample: a global `MeterProvider` read by a Prometheus exporter. */
export interface SampleMetrics {
  /** Serves nothing itself (`preventServerStart`): `GET /metrics` hands it the request. */
  readonly exporter: PrometheusExporter;
  /** Unregisters the provider (when it is still the global one) and shuts it down. Idempotent. */
  shutdown(): Promise<void>;
}

/**
 * Registers a `MeterProvider` as the global one of `@opentelemetry/api`, with a Prometheus exporter as
 * its reader. Call it before `NestFactory.create`: the package takes its meter from the global provider
 * when the module initialises, and records nothing into a provider registered later. The provider's
 * resource names the service (`OTEL_SERVICE_NAME`, else {@link SAMPLE_SERVICE_NAME}).
 */
export function startMetrics(serviceName = process.env.OTEL_SERVICE_NAME || SAMPLE_SERVICE_NAME): SampleMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    readers: [exporter],
  });
  if (!metrics.setGlobalMeterProvider(provider)) {
    throw new Error(
      'A global OpenTelemetry MeterProvider is already registered; the sample would not see its metrics.',
    );
  }
  let stopped: Promise<void> | undefined;
  return {
    exporter,
    shutdown: () =>
      (stopped ??= (async () => {
        if (metrics.getMeterProvider() === provider) metrics.disable();
        await provider.shutdown();
      })()),
  };
}
