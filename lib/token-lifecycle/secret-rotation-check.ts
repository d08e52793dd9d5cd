import type { TokenEndpoint } from '../upstream/token-endpoint';
import type { Clock } from './clock';

/** While logins cool down after rejected credentials, the secret provider is asked at most this often. */
const CHECK_INTERVAL_MS = 1_000;

/**
 * @internal Logins cool down after rejected credentials; with a secret provider, a caller refused meanwhile
 * has the endpoint ask it (at most once a second, one question at a time) whether the secret changed, so
 * that a rotated secret is tried at once rather than after the cool-down.
 */
export class SecretRotationCheck {
  /** Monotonic ms of the last question (-Infinity: none yet). */
  private checkedAt = -Infinity;
  private asking = false;

  constructor(
    private readonly endpoint: TokenEndpoint,
    private readonly clock: Clock,
  ) {}

  /** Asks, unless asked less than a second ago; `onChanged` runs if the provider answers a new secret. */
  check(onChanged: () => void): void {
    const now = this.clock.mono();
    if (this.endpoint.secretChanged === undefined || this.asking || now - this.checkedAt < CHECK_INTERVAL_MS) return;
    this.checkedAt = now;
    this.asking = true;
    this.endpoint.secretChanged().then(
      (changed) => {
        this.asking = false;
        if (changed) onChanged();
      },
      () => (this.asking = false),
    );
  }
}
