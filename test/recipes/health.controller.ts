// health.controller.ts
import { Controller, Get, Module } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly freedompay: TransferAuthHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.freedompay.isHealthy('freedompay')]);
  }
}

@Module({ imports: [TerminusModule], controllers: [HealthController], providers: [TransferAuthHealthIndicator] })
export class HealthModule {}
