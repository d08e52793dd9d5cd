/**
 * @internal Two clocks: a monotonic one that NTP steps cannot move, and the wall clock, which keeps
 * counting through a suspend. A deadline is kept on both and a token is usable only while both agree,
 * so neither kind of jump hands out an expired token.
 */
export interface Clock {
  /** Monotonic milliseconds (`performance.now()`). */
  mono(): number;
  /** Wall-clock epoch milliseconds (`Date.now()`). */
  wall(): number;
}

/** @internal Reads the globals on every call, so that Jest's fake timers can replace them. */
export const systemClock: Clock = {
  mono: () => performance.now(),
  wall: () => Date.now(),
};

/** @internal A moment on both clocks. */
export interface Instant {
  readonly mono: number;
  readonly wall: number;
}

/** @internal */
export function instant(clock: Clock): Instant {
  return { mono: clock.mono(), wall: clock.wall() };
}
