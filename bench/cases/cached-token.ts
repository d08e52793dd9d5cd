import type { BenchConfig } from '../support/config';
import { createAuthContext } from '../support/nest';
import type { Row } from '../support/report';
import { ratios, spread, type Spread } from '../support/stats';
import { runTasks, type BenchTask } from '../support/tinybench';
import { startFake } from '../support/upstream';

/** Calls per tinybench sample in the await loop: one `await` is far below the timer's resolution. */
const LOOP = 1_000;
/** Calls in one event-loop turn (no await between them), per sample. */
const BURST = 10_000;

/** A deadline no clock reaches, compared against like the hot path compares against its token's. */
const FAR = { mono: Number.MAX_SAFE_INTEGER, wall: Number.MAX_SAFE_INTEGER };

/**
 * Case 1: `auth.getAccessToken()` with a cached token (TransferAuthService from a real Nest application
 * context), two ways a real app calls it: an await loop (one call per microtask turn) and a burst of
 * 10,000 calls in one turn. Two baselines, measured in the same run: the floor, `Promise.resolve(cached)`,
 * and the floor plus what proving a token usable costs at the least, reading `performance.now()` and
 * `Date.now()` and comparing them with a deadline.
 */
export async function cachedTokenRead(config: BenchConfig): Promise<Row[]> {
  const fake = await startFake();
  const ctx = await createAuthContext({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url });
  try {
    const { auth } = ctx;
    const cached = await auth.getAccessToken();
    const callsBefore = fake.calls.total;
    let sink = 0;
    const floorPlusClocks = (): Promise<string> =>
      performance.now() < FAR.mono && Date.now() < FAR.wall ? Promise.resolve(cached) : Promise.reject(new Error());
    const shapes: { label: string; tasks: BenchTask[]; per: number }[] = [
      {
        label: 'await loop',
        per: LOOP,
        tasks: [
          loop('auth.getAccessToken()', () => auth.getAccessToken()),
          loop('Promise.resolve(cached)', () => Promise.resolve(cached)),
          loop('floor + clock reads', floorPlusClocks),
        ],
      },
      {
        label: `burst of ${BURST.toLocaleString('en-US')} in one turn`,
        per: BURST,
        tasks: [
          burst('auth.getAccessToken()', () => auth.getAccessToken()),
          burst('Promise.resolve(cached)', () => Promise.resolve(cached)),
          burst('floor + clock reads', floorPlusClocks),
        ],
      },
    ];
    function loop(name: string, call: () => Promise<string>): BenchTask {
      return {
        name: `${name} (loop)`,
        fn: async () => {
          for (let i = 0; i < LOOP; i++) sink += (await call()).length;
        },
      };
    }
    function burst(name: string, call: () => Promise<string>): BenchTask {
      return {
        name: `${name} (burst)`,
        fn: async () => {
          let last: Promise<string> | undefined;
          for (let i = 0; i < BURST; i++) last = call();
          sink += ((await last) as string).length;
        },
      };
    }

    const rows: Row[] = [];
    for (const shape of shapes) {
      const ns: [number[], number[], number[]] = [[], [], []];
      for (let run = 0; run < config.runs; run++) {
        const stats = await runTasks(shape.tasks, {
          timeMs: config.quick ? 250 : 1_000,
          warmupMs: config.quick ? 100 : 250,
          rotation: run,
        });
        stats.forEach((s, i) => ns[i as 0 | 1 | 2].push((s.p50 * 1e6) / shape.per));
      }
      const [module, floor, clocks] = ns;
      const vsClocks = spread(ratios(module, clocks));
      rows.push(
        {
          caseId: '1',
          what: `Cached read, ${shape.label}, ns/op, vs floor`,
          module: nsText(spread(module)),
          baseline: nsText(spread(floor)),
          ratio: spread(ratios(module, floor)),
          target: '',
          verdict: 'info',
        },
        {
          caseId: '1',
          what: `Cached read, ${shape.label}, vs floor + clock reads`,
          module: nsText(spread(module)),
          baseline: nsText(spread(clocks)),
          ratio: vsClocks,
          target: '<= 1.2x',
          verdict: vsClocks.median <= 1.2 ? 'met' : 'missed',
        },
      );
    }
    rows.push({
      caseId: '1',
      what: 'Cached read, 0.1.0 as published (withdrawn: it measured a hot path serving expired tokens)',
      module: '27.8 ns',
      baseline: '33.3 ns',
      ratio: '0.84x',
      target: '',
      verdict: 'info',
    });
    if (sink === 0) throw new Error('unreachable: keeps the loops from being optimised away');
    const upstreamCalls = fake.calls.total - callsBefore;
    rows.push({
      caseId: '1',
      what: 'Cached read: upstream calls',
      module: String(upstreamCalls),
      baseline: '0',
      ratio: undefined,
      target: '0',
      verdict: upstreamCalls === 0 ? 'met' : 'missed',
    });
    return rows;
  } finally {
    await ctx.close();
    await fake.stop();
  }
}

function nsText(value: Spread): string {
  return `${value.median.toFixed(1)} ns [${value.min.toFixed(1)}-${value.max.toFixed(1)}]`;
}
