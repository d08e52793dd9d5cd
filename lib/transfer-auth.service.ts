import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { inspect } from 'node:util';
import { Subject, type Observable } from 'rxjs';
import type { TransferAuthEvent } from './interfaces/transfer-auth-event.interface';
import type { TransferAuthModuleOptions } from './interfaces/transfer-auth-module-options.interface';
import type { TransferAuthStatus } from './interfaces/transfer-auth-status.interface';
import { resolveTransferAuthOptions, type ResolvedTransferAuthOptions } from './upstream/resolve-options';
import { TransferAuthError } from './errors/transfer-auth.error';
import { TokenLifecycle } from './token-lifecycle/token-lifecycle';
import { deriveStoreScope } from './token-store/store-key';
import { TransferApiClient } from './upstream/transfer-api.client';
import { TRANSFER_AUTH_MODULE_OPTIONS } from './transfer-auth.constants';
import { createTelemetry } from './telemetry/otel-telemetry';
import { NO_TELEMETRY } from './telemetry/telemetry';
import { systemClock } from './token-lifecycle/clock';

/**
 * The token provider. `await auth.getAccessToken()` before every Transfer call: it answers from the
 * cache, renews the token in the background before it expires, and shares one upstream call among any
 * number of callers when there is no usable token.
 */
@Injectable()
export class TransferAuthService implements OnModuleInit, OnApplicationShutdown {
  /** `token.acquired`, `token.refreshed`, `token.failed`, `token.invalidated`. Never carries a token. */
  readonly events$: Observable<TransferAuthEvent>;

  private readonly events = new Subject<TransferAuthEvent>();
  private readonly logger: Logger;
  private readonly rawOptions: TransferAuthModuleOptions;
  private readonly name: string | undefined;
  private options: ResolvedTransferAuthOptions | undefined;
  private lifecycle: TokenLifecycle | undefined;
  /** Shut down, possibly before init: closed for good, whatever is called later. */
  private closed = false;

  /**
   * Made by the module; `name` is the registration's name (`forRoot({ name })`), used in log lines.
   */
  constructor(@Inject(TRANSFER_AUTH_MODULE_OPTIONS) options: TransferAuthModuleOptions, @Optional() name?: string) {
    this.rawOptions = options;
    this.name = name;
    this.logger = new Logger(name === undefined ? 'TransferAuth' : `TransferAuth:${name}`);
    this.events$ = this.events.asObservable();
  }

  /** Validates the options and, with `fetchOnStartup`, fetches the first token. */
  async onModuleInit(): Promise<void> {
    if (!this.closed) await this.core().start();
  }

  /**
   * Stops the schedule, aborts upstream calls and settles waiting callers with `SHUTDOWN`, at once. With a
   * shared store, resolves once the store work under way has settled (the renewal lock given back, at
   * most 2 s): call it (it is idempotent) before you close the store's client yourself.
   */
  onApplicationShutdown(): Promise<void> {
    this.closed = true;
    const drained = this.lifecycle?.close();
    this.events.complete();
    return drained ?? Promise.resolve();
  }

  /**
   * A token the upstream will accept: never one within its safety window of expiry. Cached calls make
   * no network call. Rejects with a {@link TransferAuthError}.
   */
  getAccessToken(): Promise<string> {
    const lifecycle = this.lifecycle;
    if (lifecycle !== undefined) return lifecycle.getAccessToken(); // the hot path
    try {
      return this.core().getAccessToken();
    } catch (error) {
      return Promise.reject(error); // invalid options or closed: a rejection, like every other failure
    }
  }

  /** `"Bearer <token>"`, for the `Authorization` header of a Transfer call. */
  async getAuthorizationHeader(): Promise<string> {
    return `Bearer ${await this.getAccessToken()}`;
  }

  /** A new token now, whatever the cache holds; concurrent calls share one upstream call. */
  forceRefresh(): Promise<string> {
    try {
      return this.core().forceRefresh();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Drops the cached token, e.g. after the API answered 401 to it. Pass the token that was rejected:
   * if another caller already replaced it, nothing is dropped.
   */
  invalidate(token?: string): void {
    if (!this.closed) this.core().invalidate(token);
  }

  /** A snapshot of the token state, with no secrets: safe to log or serve. */
  getStatus(): TransferAuthStatus {
    if (this.closed && this.lifecycle === undefined) {
      return {
        state: 'closed',
        accessExpiresAt: null,
        refreshExpiresAt: null,
        lastRefreshAt: null,
        accessTokenFingerprint: null,
      };
    }
    return this.core().getStatus();
  }

  /** The configured base URL (validated): the only place credentials and tokens are ever sent. */
  getBaseUrl(): string {
    return (this.options ??= resolveTransferAuthOptions(this.rawOptions, this.name)).baseUrl;
  }

  /** @internal The registration's `name`, for messages. */
  get registrationName(): string | undefined {
    return this.name;
  }

  /** @internal The agent id, for messages (an identifier, not a secret); '?' when the options are invalid. */
  agentIdForMessages(): string {
    const agentId = this.rawOptions?.agentId;
    return typeof agentId === 'string' ? agentId : '?';
  }

  /** @internal Whether `other` serves the same agent at the same base URL (both with valid options). */
  sameAgentAs(other: TransferAuthService): boolean {
    try {
      const mine = (this.options ??= resolveTransferAuthOptions(this.rawOptions, this.name));
      const theirs = (other.options ??= resolveTransferAuthOptions(other.rawOptions, other.name));
      return mine.agentId === theirs.agentId && mine.baseUrl === theirs.baseUrl;
    } catch {
      return false; // invalid options fail the init anyway
    }
  }

  /** Printed as JSON (a logger, a devtools graph): the agent and the state, never the options. */
  toJSON(): { agentId: string; state: string } {
    return { agentId: this.agentIdForMessages(), state: this.getStatus().state };
  }

  /** @internal */
  [inspect.custom](): string {
    const state = this.lifecycle?.getStatus().state ?? 'idle';
    return `TransferAuthService { agentId: ${inspect(this.rawOptions?.agentId)}, state: '${state}', agentSecret: '[redacted]' }`;
  }

  private core(): TokenLifecycle {
    if (this.lifecycle === undefined) {
      if (this.closed) throw new TransferAuthError('SHUTDOWN', 'The token provider is shut down.');
      // Validated here, once, the first time anything needs it (init, or an earlier call).
      const options = (this.options = resolveTransferAuthOptions(this.rawOptions, this.name));
      const telemetry =
        options.telemetry === false
          ? NO_TELEMETRY
          : createTelemetry({
              name: this.name ?? 'default',
              agentId: options.telemetry.agentIdAttribute ? options.agentId : undefined,
            });
      const secret = typeof options.agentSecret === 'string' ? options.agentSecret : undefined;
      this.lifecycle = new TokenLifecycle(options, {
        endpoint: new TransferApiClient(options, systemClock, telemetry),
        store: options.store,
        telemetry,
        // The default store is this registration's alone: no key space to keep apart.
        ...(options.store === undefined
          ? {}
          : { storeScope: deriveStoreScope(options.baseUrl, options.agentId, secret) }),
        hooks: {
          log: (level, message) => this.logger[level](message),
          emit: (event) => this.events.next(event),
        },
      });
    }
    return this.lifecycle;
  }
}
