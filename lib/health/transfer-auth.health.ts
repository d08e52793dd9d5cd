import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { TransferAuthError, type TransferAuthErrorCode } from '../errors/transfer-auth.error';
import type { TransferAuthState, TransferAuthStoreStatus } from '../interfaces/transfer-auth-status.interface';
import type { TransferAuthService } from '../transfer-auth.service';
import { getTransferAuthToken } from '../transfer-auth.decorators';
import { PromiseTimeoutError, promiseTimeout } from '../utils/promise-timeout';

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

/**
 * The `state` reported: the registration's `TransferAuthState`, or `unknown` when no registration goes
 * by the `name` asked for.
 */
export type TransferAuthHealthState = TransferAuthState | 'unknown';

/**
 * Why the indicator reports `down`:
 * - a `TransferAuthErrorCode`: getting a token failed with it (`INVALID_CONFIG`: the options are invalid);
 * - `TIMEOUT`: no token came within `timeoutMs` (a renewal is still under way);
 * - `UNKNOWN_REGISTRATION`: no `TransferAuthModule` registration goes by that `name`;
 * - `INTERNAL_ERROR`: anything else went wrong (a bug: please report it).
 */
export type TransferAuthHealthCode = TransferAuthErrorCode | 'TIMEOUT' | 'UNKNOWN_REGISTRATION' | 'INTERNAL_ERROR';

/** What the indicator reports under its key. No token or secret, ever. */
export interface TransferAuthHealthData extends Record<string, unknown> {
  state: TransferAuthHealthState;
  /** Expiry of the cached access token, ISO 8601; `null` when none is cached. */
  accessExpiresAt: string | null;
  /** Only when `down`. */
  code?: TransferAuthHealthCode;
  /**
   * The shared token store's state, with a `store` only. A degraded store with a usable token is still
   * `up`: each process then renews alone, and callers are not failed because of it.
   */
  store?: TransferAuthStoreStatus;
}

/**
 * A `@nestjs/terminus` health indicator: `up` while a usable token is cached (or can be had within
 * `timeoutMs`), with the token state and expiry; `down` with a {@link TransferAuthHealthCode} when no
 * token can be had, and for a `name` no registration goes by. It never throws, and a probe never
 * starts an upstream call of its own while a renewal is under way or backing off: it joins the one in
 * flight, or is answered at once with the last error.
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
    const auth = this.find(options.name);
    if (auth === undefined) {
      return session.down({ state: 'unknown', accessExpiresAt: null, code: 'UNKNOWN_REGISTRATION' });
    }
    try {
      const status = auth.getStatus(); // throws INVALID_CONFIG before init with bad options
      if (status.state === 'valid' || status.state === 'stale') return session.up(this.data(auth));
      // The lifecycle joins a renewal in flight and answers at once during a backoff or cool-down.
      await promiseTimeout(options.timeoutMs ?? 3_000, auth.getAccessToken());
      return session.up(this.data(auth));
    } catch (error) {
      const code: TransferAuthHealthCode =
        error instanceof TransferAuthError
          ? error.code
          : error instanceof PromiseTimeoutError
            ? 'TIMEOUT'
            : 'INTERNAL_ERROR';
      return session.down({ ...this.data(auth), code });
    }
  }

  /** The registration's service, or `undefined` when none goes by `name`. */
  private find(name: string | undefined): TransferAuthService | undefined {
    try {
      const found: unknown = this.moduleRef.get(getTransferAuthToken(name), { strict: false });
      const auth = found as Partial<TransferAuthService> | null | undefined;
      return typeof auth?.getStatus === 'function' && typeof auth.getAccessToken === 'function'
        ? (auth as TransferAuthService)
        : undefined;
    } catch {
      return undefined; // Nest's "not found": a name with no registration
    }
  }

  private data(auth: TransferAuthService): TransferAuthHealthData {
    try {
      const status = auth.getStatus();
      const data: TransferAuthHealthData = {
        state: status.state,
        accessExpiresAt: status.accessExpiresAt?.toISOString() ?? null,
      };
      if (status.store !== undefined) data.store = status.store;
      return data;
    } catch {
      return { state: 'failed', accessExpiresAt: null }; // invalid options: the service cannot say more
    }
  }
}
