import type * as Tinybench from 'tinybench' with { 'resolution-mode': 'import' };

/** The tinybench module. */
export type TinybenchModule = typeof Tinybench;

/**
 * tinybench 6 is ESM-only and these scripts compile to CommonJS: load it with a real dynamic
 * `import()`, which `module: node16` keeps as is in the output.
 */
export function loadTinybench(): Promise<TinybenchModule> {
  return import('tinybench');
}

/** A task measured side by side with its baseline. */
export interface BenchTask {
  readonly name: string;
  readonly fn: () => Promise<unknown>;
  /** Runs before the task's warmup and before its measured iterations (e.g. sets the process up for it). */
  readonly beforeAll?: () => void;
}

/** Median (p50) and mean latency of one task in one tinybench run, in milliseconds per task call. */
export interface TaskStats {
  readonly p50: number;
  readonly mean: number;
  readonly samples: number;
}

/**
 * One tinybench run of `tasks`, in order rotated by `rotation` (pass the run index) so that no task
 * always gets the first (coldest) or the last slot. Returns the stats in the order of `tasks`.
 */
export async function runTasks(
  tasks: readonly BenchTask[],
  options: { timeMs: number; warmupMs: number; rotation: number },
): Promise<TaskStats[]> {
  const { Bench } = await loadTinybench();
  const bench = new Bench({ time: options.timeMs, warmupTime: options.warmupMs, iterations: 16, throws: true });
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[(i + options.rotation) % tasks.length] as BenchTask;
    bench.add(task.name, task.fn, { async: true, beforeAll: task.beforeAll });
  }
  await bench.run();
  return tasks.map((task) => {
    const result = bench.getTask(task.name)?.result;
    if (result === undefined || !('latency' in result)) {
      const error = result !== undefined && 'error' in result ? result.error : undefined;
      throw new Error(`tinybench task ${task.name} did not complete`, { cause: error });
    }
    return { p50: result.latency.p50, mean: result.latency.mean, samples: result.latency.samplesCount };
  });
}
