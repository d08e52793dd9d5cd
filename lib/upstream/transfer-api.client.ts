import type { Method } from 'axios';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { AgentAuthRequestDto, RefreshTokenRequestDto } from '../dto/agent-auth-request.dto';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { ResolvedTransferAuthOptions } from './resolve-options';
import { systemClock, type Clock } from '../token-lifecycle/clock';
import { AuthExchange } from './auth-exchange';
import { outcome, parseAnswer, shutdownError, SHUTDOWN, type Call } from './upstream-answer';
import { readAgentSecret, rejectedSecretTags, secretTag } from './agent-secret';
import type { TokenEndpoint, UpstreamTokenResponse } from './token-endpoint';
import { tokenFingerprint } from '../telemetry/fingerprint';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/telemetry';

/** How many rejected secrets a provider's answers are compared with. */
const MAX_REJECTED_REMEMBERED = 16;

/**
 * @internal The two upstream auth calls over HTTP: a deadline from connect to last byte, no redirects,
 * bodies over 64 KiB refused, answers validated with the DTOs before anyone sees them. Errors are
 * rebuilt from scratch so that no request config (which holds the secret) travels in a `cause`.
 */
export class TransferApiClient implements TokenEndpoint {
  private readonly exchange: AuthExchange;
  private readonly shutdown = new AbortController();
  /**
   * Hashes of the secrets Get token rejected since the last success (the last 16): a provider's answer
   * counts as a new secret only if it is none of them, so one that alternates between wrong secrets
   * cannot skip the cool-down. Never printed.
   */
  readonly #rejected = new Set<string>();

  constructor(
    private readonly options: ResolvedTransferAuthOptions,
    private readonly clock: Clock = systemClock,
    private readonly telemetry: Telemetry = NO_TELEMETRY,
  ) {
    this.exchange = new AuthExchange(options.baseUrl, options.requestTimeoutMs, clock);
  }

  /**
   * Get token with the secret read now. With a provider, a rejection reads it again: a secret that
   * changed meanwhile (rotated) is tried at once, in the same renewal; an unchanged one is not.
   */
  async getToken(parent?: unknown): Promise<UpstreamTokenResponse> {
    const secret = await this.readSecret().catch((error: unknown) => {
      if (TransferAuthError.is(error, 'SECRET_UNAVAILABLE')) this.telemetry.loginNotSent(error.code);
      throw error;
    });
    try {
      return await this.loginRemembering(secret, parent);
    } catch (error) {
      if (typeof this.options.agentSecret === 'string' || !TransferAuthError.is(error, 'INVALID_CREDENTIALS')) {
        throw error;
      }
      let next: string;
      try {
        next = await this.readSecret();
      } catch {
        throw error; // the rejection says more than a provider that failed just now
      }
      if (this.#rejected.has(digest(next))) throw error; // not a new secret: the cool-down decides
      return this.loginRemembering(next, parent);
    }
  }

  async secretChanged(): Promise<boolean> {
    if (typeof this.options.agentSecret === 'string' || this.#rejected.size === 0) return false;
    try {
      return !this.#rejected.has(digest(await this.readSecret()));
    } catch {
      return false;
    }
  }

  async secretTag(): Promise<string> {
    return secretTag(await this.readSecret());
  }

  /** Get token; a rejected secret is remembered (as a hash), and forgotten with the others on success. */
  private async loginRemembering(secret: string, parent: unknown): Promise<UpstreamTokenResponse> {
    try {
      const answer = await this.login(secret, parent);
      this.#rejected.clear();
      return answer;
    } catch (error) {
      if (TransferAuthError.is(error, 'INVALID_CREDENTIALS')) rejectedSecretTags.set(error, secretTag(secret));
      if (TransferAuthError.is(error, 'INVALID_CREDENTIALS') && typeof this.options.agentSecret !== 'string') {
        const hash = digest(secret);
        this.#rejected.delete(hash); // re-added last: the oldest goes first
        this.#rejected.add(hash);
        if (this.#rejected.size > MAX_REJECTED_REMEMBERED) this.#rejected.delete(this.#rejected.values().next().value!);
      }
      throw error;
    }
  }

  refreshToken(refreshToken: string, parent?: unknown): Promise<UpstreamTokenResponse> {
    const refresh = this.options.refresh;
    if (refresh === false) {
      return Promise.reject(
        new TransferAuthError('INVALID_CONFIG', 'The refresh endpoint is disabled (`refresh: false`).'),
      );
    }
    const inHeader = refresh.tokenIn !== 'body';
    const inBody = refresh.tokenIn !== 'header';
    return this.send(
      'Refresh token',
      refresh.method,
      refresh.path,
      inBody ? RefreshTokenRequestDto.of(refreshToken).toBody() : undefined,
      inHeader ? `Bearer ${refreshToken}` : undefined,
      parent,
    ).catch((error: unknown) => {
      // A refused refresh token is named by its fingerprint, so a log line can be matched with it.
      if (!TransferAuthError.is(error, 'INVALID_CREDENTIALS')) throw error;
      const named = error.message.replace(
        'the refresh token',
        `the refresh token fp=${tokenFingerprint(refreshToken)}`,
      );
      throw new TransferAuthError('INVALID_CREDENTIALS', named, { status: error.status });
    });
  }

  private readSecret(): Promise<string> {
    return readAgentSecret(this.options.agentSecret, this.options.requestTimeoutMs, this.shutdown.signal);
  }

  private login(secret: string, parent: unknown): Promise<UpstreamTokenResponse> {
    const body = AgentAuthRequestDto.of(this.options.agentId, secret);
    return this.send('Get token', 'POST', this.options.authPath, body.toBody(), undefined, parent);
  }

  close(): void {
    this.shutdown.abort(SHUTDOWN);
  }

  /** Names where it sends, nothing it holds. */
  [inspect.custom](): string {
    return `TransferApiClient { baseUrl: '${this.options.baseUrl}' }`;
  }

  private async send(
    call: Call,
    method: Method,
    path: string,
    data: string | undefined,
    authorization: string | undefined,
    parent: unknown,
  ): Promise<UpstreamTokenResponse> {
    if (this.shutdown.signal.aborted) throw shutdownError(call);
    const request = {
      kind: call === 'Get token' ? 'login' : 'refresh',
      method,
      url: `${this.options.baseUrl}${path}`,
    } as const;
    return this.telemetry.upstream(
      request,
      parent,
      async () => {
        const { response, sentAt } = await this.exchange.send(
          { call, method, path, data, authorization },
          this.shutdown.signal,
        );
        return parseAnswer(call, response, sentAt, this.clock);
      },
      outcome,
    );
  }
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
