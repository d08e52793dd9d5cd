import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { TransferAuthService } from '../transfer-auth.service';
import { MAX_TIMER_DELAY_MS } from '../internal.constants';
import { getTransferAuthToken } from '../transfer-auth.decorators';

/** Options of {@link TransferAuthHealthIndicator.isHealthy}. */
export interface TransferAuthHealthOptions {
  /** The registration to check (`forRoot({ name })`); none: the unnamed one. */
  name?: string | undefined;
  /**
   * With no usable token cached, how long to wait for one before reporting `down`.
   * @default 3000
   */
  timeoutMs?: number | undefined;
}

/** What the indicator reports under its key. No token or secret, ever. */
export interface TransferAuthHealthData extends Record<string, unknown> {
  state: string;
  accessExpiresAt: string | null;
  code?: string;
}

/**
 * A `@nestjs/terminus` health indicator: `up` while a usable token is cached (or can be had within
 * `timeoutMs`), with the token state and expiry; `down` with the error code when no token can be had.
 * Provide it next to `TerminusModule`, then `() => indicator.isHealthy('freedompay')` in a health check.
 */
@Injectable()
export class TransferAuthHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
  ) {}

  async isHealthy<const Key extends string>(
    key: Key,
    options: TransferAuthHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const session = this.health.check(key);
    const auth = this.moduleRef.get<TransferAuthService>(getTransferAuthToken(options.name), { strict: false });
    try {
      const status = auth.getStatus(); // throws INVALID_CONFIG before init with bad options
      if (status.state === 'valid' || status.state === 'stale') return session.up(this.data(auth));
      await withTimeout(auth.getAccessToken(), options.timeoutMs ?? 3_000);
      return session.up(this.data(auth));
    } catch (error) {
      const code = error instanceof TransferAuthError ? error.code : 'TIMEOUT';
      const data = code === 'INVALID_CONFIG' ? { state: 'failed', accessExpiresAt: null } : this.data(auth);
      return session.down({ ...data, code });
    }
  }

  private data(auth: TransferAuthService): TransferAuthHealthData {
    const status = auth.getStatus();
    return { state: status.state, accessExpiresAt: status.accessExpiresAt?.toISOString() ?? null };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), Math.min(ms, MAX_TIMER_DELAY_MS));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
