import { UNAUTHORIZED_SPACING_MAX_MS, UNAUTHORIZED_SPACING_MIN_MS } from '../internal.constants';

/**
 * @internal Spacing of 401-driven renewals. A 401 from a Transfer call usually means an expired or
 * revoked token, and one renewal fixes it; but when every new token is refused too, the problem is a
 * permission, and renewing on every 401 would hammer Get token. So such renewals are at least 5 s apart,
 * and the spacing doubles (to 5 min) each time the token a 401-driven renewal brought is refused in turn.
 * It falls back to 5 s once a token is replaced without having been refused.
 */
export class UnauthorizedSpacing {
  private step = 0;
  private nextAt = Number.NEGATIVE_INFINITY;
  /** The access token the last 401-driven renewal brought, while it is the current one (the lifecycle's custom inspect hides it). */
  private driven: string | undefined;
  /** Whether the current token has been refused. */
  private refused = false;

  /** A 401 named the current `token` at monotonic `now`: may a renewal start now? */
  allow(token: string, now: number): boolean {
    this.refused = true;
    if (now < this.nextAt) return false;
    if (token === this.driven) this.step++;
    this.nextAt =
      now + Math.min(UNAUTHORIZED_SPACING_MAX_MS, UNAUTHORIZED_SPACING_MIN_MS * 2 ** Math.min(this.step, 30));
    return true;
  }

  /** A new token replaced the current one; `unauthorized`: a 401 asked for it. */
  replaced(token: string, unauthorized: boolean): void {
    if (!this.refused) this.step = 0;
    this.refused = false;
    this.driven = unauthorized ? token : undefined;
  }
}
