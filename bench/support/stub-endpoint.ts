import { AgentTokenResponseDto } from '../../lib/dto/agent-token-response.dto';
import { instant, systemClock } from '../../lib/token-lifecycle/clock';
import type { TokenEndpoint, UpstreamTokenResponse } from '../../lib/upstream/token-endpoint';

/** `2024-10-02T10:52:21.123000Z`, the upstream's format. */
function upstreamTimestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * An in-memory TokenEndpoint: answers at once (next microtask) with a new, valid token pair, as a
 * validated HTTP answer would look. Keeps nothing but a counter.
 */
export class StubTokenEndpoint implements TokenEndpoint {
  issued = 0;

  constructor(private readonly accessTtlMs: number) {}

  getToken(): Promise<UpstreamTokenResponse> {
    return Promise.resolve(this.next());
  }

  refreshToken(): Promise<UpstreamTokenResponse> {
    return Promise.resolve(this.next());
  }

  close(): void {}

  private next(): UpstreamTokenResponse {
    const now = instant(systemClock);
    const n = ++this.issued;
    const body = Object.assign(new AgentTokenResponseDto(), {
      access_token: `stub-at-${n}`,
      refresh_token: `stub-rt-${n}`,
      access_expire_at: upstreamTimestamp(now.wall + this.accessTtlMs),
      refresh_expire_at: upstreamTimestamp(now.wall + 24 * this.accessTtlMs),
    });
    return { body, status: 200, serverDateMs: Math.floor(now.wall / 1000) * 1000, sentAt: now, receivedAt: now };
  }
}
