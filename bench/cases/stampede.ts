import type { BenchConfig } from '../support/config';
import { collectGarbage, settle } from '../support/config';
import { createHttpLifecycle, JumpClock } from '../support/lifecycle';
import type { Row } from '../support/report';
import { median, percentile, ratios, spread, type Spread } from '../support/stats';
import { BareRoundTrip, startFake } from '../support/upstream';

export const CALLERS = 10_000;
const TOKEN_TTL_MS = 3_600_000;

export interface Stampede {
  /** p99 of the callers' waits, ms. */
  p99: number;
  /** How long it took to start all callers (the event loop is busy meanwhile: nothing is sent), ms. */
  joinMs: number;
  failed: number;
}

/** Starts `CALLERS` callers of `call` in one go and measures each one's wait, from its call to its answer. */
export async function callTogether(call: () => Promise<unknown>): Promise<Stampede> {
  const waits = new Float64Array(CALLERS);
  const callers: Promise<void>[] = new Array(CALLERS);
  let failed = 0;
  const first = performance.now();
  for (let i = 0; i < CALLERS; i++) {
    const start = performance.now();
    callers[i] = call().then(
      () => {
        waits[i] = performance.now() - start;
      },
      () => {
        failed++;
      },
    );
  }
  const joinMs = performance.now() - first;
  await Promise.all(callers);
  return { p99: percentile(waits, 99), joinMs, failed };
}

/**
 * Case 2: 10,000 callers arrive together when the cached token has just passed its usable end (the
 * clock is moved past it). Counts upstream calls (all must share one) and compares the callers' p99
 * wait with (a) one bare upstream round trip and (b) the same 10,000 callers awaiting one shared bare
 * round trip: the ideal single-flight, which pays the same cost of starting 10,000 callers.
 */
export async function stampede(config: BenchConfig): Promise<Row[]> {
  const fake = await startFake({ accessTtlMs: TOKEN_TTL_MS });
  const bare = new BareRoundTrip(fake);
  const upstreamCalls: number[] = [];
  const moduleP99: number[] = [];
  const idealP99: number[] = [];
  const bareRtt: number[] = [];
  const joinMs: number[] = [];
  const idealJoinMs: number[] = [];
  let failed = 0;
  try {
    // Each run is the median of several stampedes per side, alternating which side goes first.
    const perRun = config.quick ? 3 : 5;
    const runs = config.runs + 1; // the first one warms the JIT and the connection pool; not reported
    for (let run = 0; run < runs; run++) {
      const clock = new JumpClock();
      const { lifecycle } = createHttpLifecycle(
        { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url },
        clock,
      );
      try {
        await lifecycle.start();
        const rtt = await bare.median(15);
        // A full GC before each side: both start with an empty young generation, so a scavenge in the
        // middle of a stampede (which copies every pending caller) is paid by the side that allocated it.
        const measureModule = async (): Promise<Stampede> => {
          collectGarbage();
          await settle();
          clock.offsetMs += TOKEN_TTL_MS; // the cached token is now past its usable end, on both clocks
          fake.resetCounters();
          const result = await callTogether(() => lifecycle.getAccessToken());
          if (run > 0) upstreamCalls.push(fake.calls.total);
          return result;
        };
        const measureIdeal = async (): Promise<Stampede> => {
          collectGarbage();
          await settle();
          let shared: Promise<number> | undefined;
          return callTogether(() => (shared ??= bare.once()));
        };
        const modules: Stampede[] = [];
        const ideals: Stampede[] = [];
        for (let i = 0; i < perRun; i++) {
          if (i % 2 === 0) {
            ideals.push(await measureIdeal());
            modules.push(await measureModule());
          } else {
            modules.push(await measureModule());
            ideals.push(await measureIdeal());
          }
        }
        if (run === 0) continue;
        moduleP99.push(median(modules.map((m) => m.p99)));
        idealP99.push(median(ideals.map((m) => m.p99)));
        bareRtt.push(rtt);
        joinMs.push(median(modules.map((m) => m.joinMs)));
        idealJoinMs.push(median(ideals.map((m) => m.joinMs)));
        failed += [...modules, ...ideals].reduce((sum, m) => sum + m.failed, 0);
      } finally {
        lifecycle.close();
      }
    }
  } finally {
    await fake.stop();
  }
  const calls = spread(upstreamCalls);
  const vsRtt = spread(ratios(moduleP99, bareRtt));
  const vsIdeal = spread(ratios(moduleP99, idealP99));
  return [
    {
      caseId: '2',
      what: `Stampede: upstream calls for ${CALLERS} callers`,
      module: `${calls.median} [${calls.min}-${calls.max}]${failed > 0 ? `, ${failed} callers failed` : ''}`,
      baseline: '1',
      ratio: undefined,
      target: 'exactly 1',
      verdict: calls.min === 1 && calls.max === 1 && failed === 0 ? 'met' : 'missed',
    },
    {
      caseId: '2',
      what: 'Stampede: p99 wait vs 1 bare round trip',
      module: ms(spread(moduleP99)),
      baseline: ms(spread(bareRtt)),
      ratio: vsRtt,
      target: '<= 1.2x',
      verdict: vsRtt.median <= 1.2 ? 'met' : 'missed',
    },
    {
      caseId: '2',
      what: 'Stampede: p99 wait vs 10k callers on 1 shared bare POST',
      module: ms(spread(moduleP99)),
      baseline: ms(spread(idealP99)),
      ratio: vsIdeal,
      target: '<= 1.2x',
      verdict: vsIdeal.median <= 1.2 ? 'met' : 'missed',
    },
    {
      caseId: '2',
      what: 'Stampede: time to start the 10k callers',
      module: ms(spread(joinMs)),
      baseline: ms(spread(idealJoinMs)),
      ratio: spread(ratios(joinMs, idealJoinMs)),
      target: '',
      verdict: 'info',
    },
  ];
}

export function ms(value: Spread): string {
  return `${value.median.toFixed(2)} ms [${value.min.toFixed(2)}-${value.max.toFixed(2)}]`;
}
