// probes.controller.ts
import { Controller, Get, Module } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';

@Controller('health')
export class ProbesController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly freedompay: TransferAuthHealthIndicator,
  ) {}

  /** Liveness (and startup): the process answers. Restarting a pod never brings Freedom Pay back. */
  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  /** Readiness: what this pod needs to serve at all (your database, ...); Freedom Pay is not in it. */
  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  /** Freedom Pay, for people, dashboards and alerts: a dependency check, not a probe. */
  @Get('dependencies')
  @HealthCheck()
  dependencies(): Promise<HealthCheckResult> {
    return this.health.check([() => this.freedompay.isHealthy('freedompay', { timeoutMs: 1_000 })]);
  }
}

@Module({ imports: [TerminusModule], controllers: [ProbesController], providers: [TransferAuthHealthIndicator] })
export class ProbesModule {}
