import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { repoRoot } from './built-package';

const LIB = join(repoRoot(), 'lib') + sep;
const TESTING = join(LIB, 'testing') + sep;

/** A line of a stack trace that runs code of the package itself: lib/, not lib/testing/ (the fake), nothing installed. */
function libFrame(stack: string): string | undefined {
  return stack
    .split('\n')
    .slice(1)
    .find((line) => line.includes(LIB) && !line.includes(TESTING) && !line.includes(`${sep}node_modules${sep}`))
    ?.trim();
}

type Timer = ReturnType<typeof setTimeout>;

interface Tracked {
  timer: Timer;
  where: string;
  /** Fired (a timeout; an interval never is) or cleared. */
  done: boolean;
}

export interface LibTimers {
  /** Where each timer the package created since `trackLibTimers()` and that is still armed was created. */
  pending(): string[];
  /** Puts the real functions back. */
  restore(): void;
}

/**
 * Tracks the timers the package's own code creates: `setTimeout` and `setInterval` of this test file's
 * global object are wrapped, and a timer counts when a frame of its creation stack is in lib/ (lib/testing/
 * excluded). Nothing else counts: Jest's timers, other libraries' (unless lib/ asked for them), the test's own,
 * and the package instances of the files that ran before in the same worker (each test file has its own
 * global object, and the package code it loaded reads that one). `process.getActiveResourcesInfo()` counts all
 * of them, and fails when one of those happens to be armed.
 *
 * The package reads the timer functions from the global object on every call (lib/token-lifecycle/clock.ts,
 * so that fake timers can replace them), and never imports them from node:timers:
 * `libTimerImports()` checks that, so that no timer of the package can go around the tracker.
 */
export function trackLibTimers(): LibTimers {
  const tracked: Tracked[] = [];
  const real = {
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    clearInterval: globalThis.clearInterval,
  };
  const stackOf = (): string => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 50;
    try {
      return new Error().stack ?? '';
    } finally {
      Error.stackTraceLimit = limit;
    }
  };

  const wrap = (create: typeof setTimeout, repeats: boolean): typeof setTimeout =>
    Object.assign(
      ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
        const where = libFrame(stackOf());
        if (where === undefined) return create(fn, ms, ...args);
        const record: Tracked = { timer: undefined as unknown as Timer, where, done: false };
        record.timer = create(() => {
          if (!repeats) record.done = true;
          fn(...args);
        }, ms);
        tracked.push(record);
        return record.timer;
      }) as typeof setTimeout,
      create, // util.promisify.custom and the like
    );
  // Node clears either kind with either function, by the object or by its numeric id.
  const clear = (timer?: Timer | string | number): void => {
    for (const record of tracked) {
      if (record.timer === timer || (typeof timer !== 'object' && Number(timer) === Number(record.timer))) {
        record.done = true;
      }
    }
    real.clearTimeout(timer as Timer);
  };

  globalThis.setTimeout = wrap(real.setTimeout, false);
  globalThis.setInterval = wrap(
    real.setInterval as unknown as typeof setTimeout,
    true,
  ) as unknown as typeof setInterval;
  globalThis.clearTimeout = clear as typeof clearTimeout;
  globalThis.clearInterval = clear as typeof clearInterval;
  return {
    pending: () => tracked.filter((r) => !r.done).map((r) => r.where),
    restore: () => Object.assign(globalThis, real),
  };
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Files of the package (lib/testing/ aside) that take timers from anywhere but the global object, where
 * `trackLibTimers()` would not see them: node:timers, timers/promises, `AbortSignal.timeout()`.
 */
export function libTimerImports(): string[] {
  const around = /from ['"](node:)?timers(\/promises)?['"]|require\(['"](node:)?timers|AbortSignal\.timeout\(/;
  return sources(LIB)
    .filter((file) => !file.startsWith(TESTING) && !file.endsWith('.spec.ts'))
    .filter((file) => around.test(readFileSync(file, 'utf8')))
    .map((file) => relative(repoRoot(), file));
}
