/** How a benchmark run was asked for. */
export interface BenchConfig {
  /** `--quick`: fewer runs and requests, for a CI smoke run (about 100 s on 2 cores: 98 s measured). */
  readonly quick: boolean;
  /** Runs per case; each case reports the median and range over them. */
  readonly runs: number;
}

/** Waits for pending I/O callbacks and timers of the previous step to drain. */
export function settle(ms = 20): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A full collection when `--expose-gc` is on, so that one side does not pay for the other's garbage. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
