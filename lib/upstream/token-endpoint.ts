import type { AgentTokenResponseDto } from '../dto/agent-token-response.dto';
import type { Instant } from '../token-lifecycle/clock';

/** @internal A validated token answer, with what is needed to place its expiry on the local clocks. */
export interface UpstreamTokenResponse {
  readonly body: AgentTokenResponseDto;
  readonly status: number;
  /** The upstream's `Date` header, epoch ms, when it sent a parsable one. */
  readonly serverDateMs: number | undefined;
  /** When the request was sent: the upstream's `Date` is no earlier than this. */
  readonly sentAt: Instant;
  readonly receivedAt: Instant;
}

/**
 * @internal What the token lifecycle needs from the upstream. `parent` is the trace context of the caller
 * who waits for the call, if any (opaque: see {@link Telemetry}).
 */
export interface TokenEndpoint {
  getToken(parent?: unknown): Promise<UpstreamTokenResponse>;
  refreshToken(refreshToken: string, parent?: unknown): Promise<UpstreamTokenResponse>;
  /**
   * With `agentSecret` as a provider, after Get token rejected the credentials: whether the provider now
   * answers another secret than the one rejected (then a login may be tried at once). Never rejects.
   */
  secretChanged?(): Promise<boolean>;
  /**
   * The tag of the secret a login would be sent with now (`secretTag` of agent-secret.ts): a fleet's login cool-down
   * stands for the secret it was started with. Rejects when the provider fails.
   */
  secretTag?(): Promise<string>;
  /** Aborts every request in flight (they reject with `SHUTDOWN`); later calls reject at once. */
  close(): void;
}
