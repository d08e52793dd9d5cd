import { MAX_TIMER_DELAY_MS } from '../transfer-auth.constants';
import type { CachedToken } from './cached-token';

const noop = (): void => undefined;

/**
 * @internal One renewal in flight, shared by every caller that needs a token meanwhile: they all get
 * one promise. While anyone waits, a ref'd timer keeps the process alive (the renewal's own timers and
 * sockets are unref'd, so that a renewal nobody waits for never does).
 */
export class Flight {
  readonly promise: Promise<CachedToken>;
  private access: Promise<string> | undefined;
  private keeper: ReturnType<typeof setTimeout> | undefined;
  private waiting = 0;

  constructor(
    /** Whether the renewal may log in with the credentials (else: refresh token only). */
    readonly canLogIn: boolean,
    renewal: Promise<CachedToken>,
  ) {
    this.promise = renewal;
    renewal.catch(noop); // a background renewal may have nobody listening
  }

  /** Whether anyone waited for it. */
  get awaited(): boolean {
    return this.waiting > 0;
  }

  /** A caller waits for the token; `closing` rejects it at once on shutdown, whatever the renewal does. */
  join(closing: Promise<never>): Promise<string> {
    this.waiting++;
    this.keeper ??= setTimeout(noop, MAX_TIMER_DELAY_MS);
    return (this.access ??= Promise.race([this.promise.then((token) => token.accessToken), closing]));
  }

  /** The renewal settled (or the lifecycle closed): nothing holds the process any more. */
  land(): void {
    if (this.keeper !== undefined) clearTimeout(this.keeper);
    this.keeper = undefined;
  }
}
