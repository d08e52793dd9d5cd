import { resolveTransferAuthOptions, type ResolvedTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { toCachedToken } from '../../lib/token-lifecycle/cached-token';
import type { Clock } from '../../lib/token-lifecycle/clock';
import { TokenLifecycle } from '../../lib/token-lifecycle/token-lifecycle';
import { TransferApiClient } from '../../lib/upstream/transfer-api.client';
import type { TokenEndpoint, UpstreamTokenResponse } from '../../lib/upstream/token-endpoint';
import type { TransferAuthModuleOptions } from '../../lib/index';
import type { Telemetry } from '../../lib/telemetry/telemetry';

/** The system clocks plus an offset that a case can move forward, to make a token expire at once. */
export class JumpClock implements Clock {
  offsetMs = 0;
  mono(): number {
    return performance.now() + this.offsetMs;
  }
  wall(): number {
    return Date.now() + this.offsetMs;
  }
}

/**
 * Wraps the real HTTP endpoint and remembers, for every token it delivered, when the lifecycle will
 * consider it stale: the same pure computation the lifecycle does (`toCachedToken`), on the same answer.
 */
export class RecordingEndpoint implements TokenEndpoint {
  /** `staleAt.mono` of the last token delivered. */
  lastStaleAtMono: number | undefined;
  /** When the last call was made and when its validated answer came back (`performance.now()`). */
  lastCallAt: number | undefined;
  lastAnswerAt: number | undefined;

  constructor(
    private readonly inner: TokenEndpoint,
    private readonly refreshMarginMs: number | undefined,
  ) {}

  getToken(): Promise<UpstreamTokenResponse> {
    this.lastCallAt = performance.now();
    return this.inner.getToken().then((response) => this.record(response));
  }

  refreshToken(refreshToken: string): Promise<UpstreamTokenResponse> {
    this.lastCallAt = performance.now();
    return this.inner.refreshToken(refreshToken).then((response) => this.record(response));
  }

  close(): void {
    this.inner.close();
  }

  private record(response: UpstreamTokenResponse): UpstreamTokenResponse {
    this.lastAnswerAt = performance.now();
    this.lastStaleAtMono = toCachedToken(response, this.refreshMarginMs).token.staleAt.mono;
    return response;
  }
}

export interface BenchLifecycle {
  readonly lifecycle: TokenLifecycle;
  readonly options: ResolvedTransferAuthOptions;
  readonly endpoint: RecordingEndpoint;
}

/**
 * The Nest-free core, wired as `TransferAuthService` wires it (real `TransferApiClient` over HTTP, the
 * same `telemetry` given to both, none by default), with a clock the case controls and a hook to observe
 * each new token. `close()` it.
 */
export function createHttpLifecycle(
  raw: TransferAuthModuleOptions,
  clock: Clock,
  onToken: (type: 'token.acquired' | 'token.refreshed') => void = () => undefined,
  telemetry?: Telemetry,
): BenchLifecycle {
  const options = resolveTransferAuthOptions(raw);
  const endpoint = new RecordingEndpoint(new TransferApiClient(options, clock, telemetry), options.refreshMarginMs);
  const lifecycle = new TokenLifecycle(options, {
    endpoint,
    clock,
    telemetry,
    hooks: {
      log: () => undefined,
      emit: (event) => {
        if (event.type === 'token.acquired' || event.type === 'token.refreshed') onToken(event.type);
      },
    },
  });
  return { lifecycle, options, endpoint };
}
