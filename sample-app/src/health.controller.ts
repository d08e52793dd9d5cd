import { Controller, Get, Inject } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';
import { USD_AGENT } from './freedompay.config';

/** Injection token: whether the second agent is registered in this run. */
export const USD_AGENT_ENABLED = Symbol('USD_AGENT_ENABLED');

/** `GET /health`: terminus, one indicator per agent. Up with token state and expiry; never a token. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly transferAuth: TransferAuthHealthIndicator,
    @Inject(USD_AGENT_ENABLED) private readonly usdEnabled: boolean,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => this.transferAuth.isHealthy('freedompay')];
    if (this.usdEnabled) checks.push(() => this.transferAuth.isHealthy('freedompay_usd', { name: USD_AGENT }));
    return this.health.check(checks);
  }
}
