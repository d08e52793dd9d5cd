import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { IncomingMessage, ServerResponse } from 'node:http';
import { SAMPLE_METRICS, type SampleMetrics } from './metrics';

/**
 * `GET /metrics`: every metric of the app's OpenTelemetry SDK (the package's among them) in the Prometheus
 * text format, for Prometheus to scrape. Names, descriptions and attributes; never a token or a secret.
 */
@Controller('metrics')
export class MetricsController {
  constructor(@Inject(SAMPLE_METRICS) private readonly metrics: SampleMetrics) {}

  @Get()
  scrape(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    // The exporter collects and writes the answer itself (200, text/plain).
    this.metrics.exporter.getMetricsRequestHandler(request, response);
  }
}
