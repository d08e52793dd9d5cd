import { MAX_TIMER_DELAY_MS } from '../internal.constants';
import type { Clock } from './clock';

/**
 * @internal The one background timer: fires `onDue` at a monotonic time. Unref'd, so that it never
 * keeps a process alive; waits longer than setTimeout can take (about 24.8 days) are chained.
 */
export class Schedule {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: () => void,
  ) {}

  /** Fires at `dueAt` (monotonic ms), replacing whatever was armed. */
  at(dueAt: number): void {
    this.clear();
    if (Number.isNaN(dueAt)) return; // never a timer that fires every 1 ms
    const tick = (): void => {
      this.timer = undefined;
      const left = dueAt - this.clock.mono();
      if (left > 0) this.arm(tick, left);
      else this.onDue();
    };
    this.arm(tick, dueAt - this.clock.mono());
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(tick: () => void, ms: number): void {
    this.timer = setTimeout(tick, Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS));
    this.timer.unref?.();
  }
}
