import type { Clock } from '../../lib/token-lifecycle/clock';
import type { BenchConfig } from '../support/config';
import { createHttpLifecycle } from '../support/lifecycle';
import { createAuthContext } from '../support/nest';
import type { Row } from '../support/report';
import { ratios, spread, type Spread } from '../support/stats';
import { runTasks } from '../support/tinybench';
import { startFake } from '../support/upstream';

/** Calls per tinybench sample: one `await` is far below the timer's resolution. */
const BATCH = 1_000;

/** Time stands still: the diagnostic lifecycle's token is fresh forever and reading the clock is free. */
class FrozenClock implements Clock {
  private readonly at = { mono: performance.now(), wall: Date.now() };
  mono(): number {
    return this.at.mono;
  }
  wall(): number {
    return this.at.wall;
  }
}

/**
 * Case 1: `await auth.getAccessToken()` with a cached token (TransferAuthService from a real Nest
 * application context) against the floor, `await Promise.resolve(cachedString)`. A third task, for
 * diagnosis: the same read on a Nest-free lifecycle whose clock costs nothing, which shows how much of
 * the difference is the two clock reads of the hot path.
 */
export async function cachedTokenRead(config: BenchConfig): Promise<Row[]> {
  const fake = await startFake();
  const ctx = await createAuthContext({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url });
  const frozen = createHttpLifecycle(
    { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url },
    new FrozenClock(),
  ).lifecycle;
  try {
    const { auth } = ctx;
    const cached = await auth.getAccessToken();
    await frozen.start();
    const callsBefore = fake.calls.total;
    let sink = 0;
    const moduleNs: number[] = [];
    const floorNs: number[] = [];
    const frozenNs: number[] = [];
    for (let run = 0; run < config.runs; run++) {
      const [service, floor, noClock] = await runTasks(
        [
          {
            name: 'auth.getAccessToken()',
            fn: async () => {
              for (let i = 0; i < BATCH; i++) sink += (await auth.getAccessToken()).length;
            },
          },
          {
            name: 'Promise.resolve(cached)',
            fn: async () => {
              for (let i = 0; i < BATCH; i++) sink += (await Promise.resolve(cached)).length;
            },
          },
          {
            name: 'lifecycle, free clock',
            fn: async () => {
              for (let i = 0; i < BATCH; i++) sink += (await frozen.getAccessToken()).length;
            },
          },
        ],
        { timeMs: config.quick ? 250 : 1_000, warmupMs: config.quick ? 100 : 250, rotation: run },
      );
      moduleNs.push(((service as { p50: number }).p50 * 1e6) / BATCH);
      floorNs.push(((floor as { p50: number }).p50 * 1e6) / BATCH);
      frozenNs.push(((noClock as { p50: number }).p50 * 1e6) / BATCH);
    }
    if (sink === 0) throw new Error('unreachable: keeps the loops from being optimised away');
    const upstreamCalls = fake.calls.total - callsBefore;
    const ratio = spread(ratios(moduleNs, floorNs));
    const overhead = spread(moduleNs.map((ns, i) => ns - (floorNs[i] as number)));
    const frozenRatio = spread(ratios(frozenNs, floorNs));
    return [
      {
        caseId: '1',
        what: 'Cached token read, ns/op',
        module: ns(spread(moduleNs)),
        baseline: ns(spread(floorNs)),
        ratio,
        target: '<= 1.5x',
        verdict: ratio.median <= 1.5 ? 'met' : 'missed',
      },
      {
        caseId: '1',
        what: 'Cached read: overhead per call',
        module: ns(overhead),
        baseline: '0 ns',
        ratio: undefined,
        target: '< 100 ns',
        verdict: overhead.median < 100 ? 'met' : 'missed',
      },
      {
        caseId: '1',
        what: 'Cached read, clock reads free (diagnosis)',
        module: ns(spread(frozenNs)),
        baseline: ns(spread(floorNs)),
        ratio: frozenRatio,
        target: '',
        verdict: 'info',
      },
      {
        caseId: '1',
        what: 'Cached read: upstream calls',
        module: String(upstreamCalls),
        baseline: '0',
        ratio: undefined,
        target: '0',
        verdict: upstreamCalls === 0 ? 'met' : 'missed',
      },
    ];
  } finally {
    frozen.close();
    await ctx.close();
    await fake.stop();
  }
}

function ns(value: Spread): string {
  return `${value.median.toFixed(1)} ns [${value.min.toFixed(1)}-${value.max.toFixed(1)}]`;
}
