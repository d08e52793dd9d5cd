import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedTokenRead } from './cases/cached-token';
import { longRun } from './cases/long-run';
import { fleet } from './cases/fleet';
import { refreshLatency } from './cases/refresh-latency';
import { requestOverhead } from './cases/request-overhead';
import { stampede } from './cases/stampede';
import { telemetryCost } from './cases/telemetry';
import { withoutModule } from './cases/without-module';
import type { BenchConfig } from './support/config';
import { METHOD_NOTES } from './support/notes';
import {
  BENCHMARKS_PATH,
  benchmarksMarkdown,
  describeMachine,
  machineLines,
  textTable,
  type Row,
} from './support/report';
import { findAttachTransferAuth } from './support/transfer-http';

interface Case {
  readonly title: string;
  readonly run: (config: BenchConfig) => Promise<Row[]>;
}

const CASES: readonly Case[] = [
  { title: '1. Cached token read', run: cachedTokenRead },
  { title: '2. Stampede at expiry', run: stampede },
  { title: '3. Without the module', run: withoutModule },
  { title: '4. Authenticated request overhead', run: requestOverhead },
  { title: '5. Long run (100k refresh cycles)', run: longRun },
  { title: '6. Refresh latency', run: refreshLatency },
  { title: '7. Fleet (child processes, Redis)', run: fleet },
  { title: '8. OpenTelemetry SDK registered vs not', run: telemetryCost },
];

/** From the repository root, where npm runs scripts; compiled, this file is bench-dist/bench/run.js. */
const ROOT = join(__dirname, '..', '..');

const USAGE = `Usage: npm run bench [-- --quick] [-- --only=1,4] [-- --write]
  --quick   fewer runs and requests (CI smoke: about 100 s on 2 cores); writes bench-dist/BENCHMARKS.quick.md
  --only=N  run only these cases (comma-separated numbers); does not write ${BENCHMARKS_PATH}
  --write   write ${BENCHMARKS_PATH} even with --quick or --only`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help')) return void console.log(USAGE);
  const quick = args.includes('--quick');
  const only = args
    .find((arg) => arg.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',');
  const config: BenchConfig = { quick, runs: quick ? 3 : 5 };
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
    console.warn('global.gc is missing: run node with --expose-gc (case 5 needs it, case 2 is noisier without).');
  }
  if (findAttachTransferAuth() === undefined) {
    console.warn('attachTransferAuth is not exported from lib/index.ts: cases 3 and 4 print "pending".');
  }

  const rows: Row[] = [];
  let failed = false;
  const started = performance.now();
  for (const [index, c] of CASES.entries()) {
    if (only !== undefined && !only.includes(String(index + 1))) continue;
    process.stdout.write(`${c.title} ...`);
    const t0 = performance.now();
    try {
      rows.push(...(await c.run(config)));
      process.stdout.write(` ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    } catch (error) {
      failed = true;
      process.stdout.write(' FAILED\n');
      console.error(error);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const machine = describeMachine();
  const runsLine = `${config.runs} runs per case${quick ? ' (--quick)' : ''}, ${seconds.toFixed(0)} s in all.`;
  console.log(`\n${textTable(rows)}\n`);
  console.log([...machineLines(machine), runsLine].join('\n'));

  const complete = only === undefined && !failed;
  const target =
    args.includes('--write') || (complete && !quick)
      ? join(ROOT, BENCHMARKS_PATH)
      : quick && complete
        ? join(ROOT, 'bench-dist', 'BENCHMARKS.quick.md')
        : undefined;
  if (target !== undefined) {
    const text = benchmarksMarkdown(rows, machine, runsLine, METHOD_NOTES);
    writeFileSync(target, text);
    console.log(`Wrote ${target}`);
  }
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
