import type { Telemetry } from '../telemetry/telemetry';
import type { Clock } from './clock';
import type { Flight } from './flight';
import { toError } from './renewal';

/**
 * @internal How long callers wait when no usable token is cached, for the wait histogram. The start of
 * each wait is kept on the flight it joins, and all are recorded when it lands: one handler per renewal,
 * however many callers. Without telemetry, a join is only a join.
 */
export class CallerWaits {
  constructor(
    private readonly telemetry: Telemetry,
    private readonly clock: Clock,
  ) {}

  /** A caller waits for `flight`. */
  join(flight: Flight): Promise<string> {
    const joined = flight.join();
    if (!this.telemetry.timesWaits) return joined;
    if (flight.waitsFrom === undefined) {
      const waitsFrom: number[] = (flight.waitsFrom = []);
      const record = (outcome: string): void => {
        const now = this.clock.mono();
        // After the callers have resumed: recording costs about a microsecond a caller with an SDK, which
        // a stampede of thousands would otherwise wait out before any of them gets its token.
        setImmediate(() =>
          this.telemetry.callersWaited(
            waitsFrom.map((from) => Math.max(0, now - from) / 1000),
            outcome,
          ),
        ).unref();
      };
      joined.then(
        () => record('ok'),
        (error: unknown) => record(toError(error).code),
      );
    }
    flight.waitsFrom.push(this.clock.mono());
    return joined;
  }

  /** A caller was refused at once (a failure still holds renewals back): a wait of 0 s. */
  refused(code: string): void {
    if (this.telemetry.timesWaits) this.telemetry.callersWaited([0], code);
  }
}
