import { createTelemetry, METRIC } from '../../lib/telemetry/otel-telemetry';
import { NO_TELEMETRY, type Telemetry } from '../../lib/telemetry/telemetry';
import type { FakeTransferServer } from '../../lib/testing/fake-transfer-server';
import { collectGarbage, settle, type BenchConfig } from '../support/config';
import { createHttpLifecycle, JumpClock, type BenchLifecycle } from '../support/lifecycle';
import { createAuthContext, type AuthContext } from '../support/nest';
import { clearOpenTelemetryGlobals, OpenTelemetrySdk, type SdkRecorded, type SdkState } from '../support/otel';
import type { Row } from '../support/report';
import { median, ratios, spread, type Spread } from '../support/stats';
import { runTasks, type BenchTask } from '../support/tinybench';
import { startFake } from '../support/upstream';
import { CALLERS, callTogether, ms, type Stampede } from './stampede';

/** Awaits per tinybench sample: one `await` is far below the timer's resolution. */
const LOOP = 1_000;
const TOKEN_TTL_MS = 3_600_000;
const RENEWALS = METRIC.renewals;
const WAITS = METRIC.waitDuration;

/**
 * Case 8: what an OpenTelemetry SDK costs the module, in the same run. (a) `@opentelemetry/api` present,
 * no SDK registered (the module got noop instruments at init); (b) an SDK registered globally before the
 * module initialised (MeterProvider with a reader, BasicTracerProvider, AsyncLocalStorageContextManager);
 * (c) `telemetry: false`, with the same SDK registered. First the cached path, `await auth.getAccessToken()`
 * on three Nest application contexts, one per side; then the slow path, 10,000 callers on one renewal (as
 * case 2) on three lifecycles wired with each side's telemetry. The globals of `@opentelemetry/api` are
 * set for each side as it runs, and cleared at the end: no other case sees them.
 */
export async function telemetryCost(config: BenchConfig): Promise<Row[]> {
  const sdk = new OpenTelemetrySdk();
  try {
    const cached = await cachedPath(config, sdk);
    const slow = await slowPath(config, sdk);
    const recorded = await sdk.recorded();
    return [...cached.rows, ...slow.rows, recordedRow(recorded, [cached.expected, slow.expected])];
  } finally {
    await sdk.shutdown(); // clears the globals
  }
}

/**
 * What the SDK must have recorded from the registration of side (b): every renewal (one span each), and
 * one wait per caller while the case measured (an init may or may not count as a wait: not checked);
 * and nothing from the others.
 */
interface Expected {
  readonly sdkName: string;
  readonly otherNames: readonly string[];
  readonly renewals: number;
  /** Waits recorded during the measured phases, counted by the case from the SDK... */
  readonly measuredWaits: number;
  /** ... and how many there must be. */
  readonly wantedWaits: number;
}

/** How many times the SDK recorded `metric` for the registration `name` so far. */
async function countOf(sdk: OpenTelemetrySdk, metric: string, name: string): Promise<number> {
  // Waits are recorded once the callers have resumed (a setImmediate): let that run first.
  await new Promise<void>((resolve) => setImmediate(resolve));
  return (await sdk.recorded()).points.get(metric)?.get(name) ?? 0;
}

async function cachedPath(config: BenchConfig, sdk: OpenTelemetrySdk): Promise<{ rows: Row[]; expected: Expected }> {
  const fake = await startFake({ accessTtlMs: TOKEN_TTL_MS });
  const contexts: AuthContext[] = [];
  try {
    const options = { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url };
    // Each context initialises (and fetches its first token) with the globals its side has.
    sdk.enter('none');
    const none = await createAuthContext(options, 'cached-none');
    contexts.push(none);
    sdk.enter('registered');
    const withSdk = await createAuthContext(options, 'cached-sdk');
    contexts.push(withSdk);
    const off = await createAuthContext({ ...options, telemetry: false }, 'cached-off');
    contexts.push(off);
    clearOpenTelemetryGlobals();
    const tokens = await Promise.all(contexts.map((ctx) => ctx.auth.getAccessToken()));
    const waitsBefore = await countOf(sdk, WAITS, 'cached-sdk');
    const callsBefore = fake.calls.total;
    let sink = 0;
    const task = (label: string, ctx: AuthContext, state: SdkState): BenchTask => ({
      name: label,
      beforeAll: () => sdk.enter(state),
      fn: async () => {
        for (let i = 0; i < LOOP; i++) sink += (await ctx.auth.getAccessToken()).length;
      },
    });
    const tasks = [
      task('(a) no SDK', none, 'none'),
      task('(b) SDK registered', withSdk, 'registered'),
      task('(c) telemetry: false, SDK registered', off, 'registered'),
      task('(b) SDK registered, context manager entered', withSdk, 'entered'),
      task('(c) telemetry: false, context manager entered', off, 'entered'),
    ];
    const ns: number[][] = tasks.map(() => []);
    for (let run = 0; run < config.runs; run++) {
      const stats = await runTasks(tasks, {
        timeMs: config.quick ? 250 : 1_000,
        warmupMs: config.quick ? 100 : 250,
        rotation: run,
      });
      stats.forEach((s, i) => ns[i]?.push((s.p50 * 1e6) / LOOP));
    }
    clearOpenTelemetryGlobals();
    const measuredWaits = (await countOf(sdk, WAITS, 'cached-sdk')) - waitsBefore;
    if (sink === 0 || new Set(tokens).size !== 3) throw new Error('unreachable: three contexts, three tokens');
    const upstreamCalls = fake.calls.total - callsBefore;
    const [a, b, c, bEntered, cEntered] = ns as [number[], number[], number[], number[], number[]];
    const row = (what: string, module: number[], baseline: number[], target: boolean): Row => {
      const ratio = spread(ratios(module, baseline));
      return {
        caseId: '8',
        what: `Cached read, await loop, ${what}`,
        module: nsText(spread(module)),
        baseline: nsText(spread(baseline)),
        ratio,
        target: target ? '<= 1.10x' : '',
        verdict: target ? (ratio.median <= 1.1 ? 'met' : 'missed') : 'info',
      };
    };
    const rows: Row[] = [
      row('(b) SDK registered vs (a) no SDK', b, a, true),
      row('(c) telemetry: false vs (a) no SDK', c, a, true),
      row("SDK's context manager entered: (b) vs (c) telemetry: false", bEntered, cEntered, true),
      row("SDK's context manager entered, (b) vs (a) no SDK: every await of the process pays it", bEntered, a, false),
      {
        caseId: '8',
        what: 'Cached read with an SDK: upstream calls',
        module: String(upstreamCalls),
        baseline: '0',
        ratio: undefined,
        target: '0',
        verdict: upstreamCalls === 0 ? 'met' : 'missed',
      },
    ];
    // The SDK saw the first login of (b), no wait on the cached path, and nothing of (a) or (c).
    const expected: Expected = {
      sdkName: 'cached-sdk',
      otherNames: ['cached-none', 'cached-off'],
      renewals: 1,
      measuredWaits,
      wantedWaits: 0,
    };
    return { rows, expected };
  } finally {
    clearOpenTelemetryGlobals();
    for (const ctx of contexts) await ctx.close();
    await fake.stop();
  }
}

/** One way of running the lifecycle: the telemetry it was given, and the process while it is measured. */
interface SlowSide {
  readonly name: string;
  readonly state: SdkState;
  readonly telemetry: Telemetry;
}

async function slowPath(config: BenchConfig, sdk: OpenTelemetrySdk): Promise<{ rows: Row[]; expected: Expected }> {
  const fake: FakeTransferServer = await startFake({ accessTtlMs: TOKEN_TTL_MS });
  // The telemetry of each side, made as TransferAuthService makes it at init, with that side's globals.
  sdk.enter('none');
  const noneTelemetry = createTelemetry({ name: 'stampede-none', agentId: undefined });
  sdk.enter('registered');
  const sdkTelemetry = createTelemetry({ name: 'stampede-sdk', agentId: undefined });
  clearOpenTelemetryGlobals();
  const sides: SlowSide[] = [
    { name: 'stampede-none', state: 'none', telemetry: noneTelemetry },
    // The first upstream call under an SDK enters its context manager: as it is in an app with an SDK.
    { name: 'stampede-sdk', state: 'entered', telemetry: sdkTelemetry },
    { name: 'stampede-off', state: 'entered', telemetry: NO_TELEMETRY },
  ];
  const p99: number[][] = sides.map(() => []);
  const upstreamCalls: number[] = [];
  let failed = 0;
  let sdkStampedes = 0;
  let sdkLogins = 0;
  let sdkWaits = 0;
  try {
    const perRun = config.quick ? 3 : 5;
    const runs = config.runs + 1; // the first one warms the JIT and the connection pool; not reported
    for (let run = 0; run < runs; run++) {
      const lifecycles: { clock: JumpClock; bench: BenchLifecycle }[] = [];
      try {
        for (const side of sides) {
          const clock = new JumpClock();
          const options = { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url };
          const bench = createHttpLifecycle(options, clock, undefined, side.telemetry);
          lifecycles.push({ clock, bench });
          sdk.enter(side.state);
          await bench.lifecycle.start();
          if (side.name === 'stampede-sdk') sdkLogins++;
        }
        const measure = async (index: number): Promise<Stampede> => {
          const side = sides[index] as SlowSide;
          const { clock, bench } = lifecycles[index] as (typeof lifecycles)[number];
          const waitsBefore = side.name === 'stampede-sdk' ? await countOf(sdk, WAITS, side.name) : 0;
          sdk.enter(side.state);
          // A full GC before each side: a scavenge in the middle of a stampede is paid by whoever allocated.
          collectGarbage();
          await settle();
          clock.offsetMs += TOKEN_TTL_MS; // the cached token is now past its usable end, on both clocks
          fake.resetCounters();
          const result = await callTogether(() => bench.lifecycle.getAccessToken());
          if (side.name === 'stampede-sdk') {
            sdkStampedes++;
            sdkWaits += (await countOf(sdk, WAITS, side.name)) - waitsBefore;
          }
          if (run > 0) upstreamCalls.push(fake.calls.total);
          failed += result.failed;
          return result;
        };
        const results: Stampede[][] = sides.map(() => []);
        for (let i = 0; i < perRun; i++) {
          // Rotate which side goes first.
          for (let k = 0; k < sides.length; k++) {
            const index = (i + k) % sides.length;
            results[index]?.push(await measure(index));
          }
        }
        if (run > 0) results.forEach((r, index) => p99[index]?.push(median(r.map((m) => m.p99))));
      } finally {
        clearOpenTelemetryGlobals();
        for (const { bench } of lifecycles) bench.lifecycle.close();
      }
    }
  } finally {
    clearOpenTelemetryGlobals();
    await fake.stop();
  }
  const [a, b, c] = p99 as [number[], number[], number[]];
  const row = (what: string, module: number[], baseline: number[], target: boolean): Row => {
    const ratio = spread(ratios(module, baseline));
    return {
      caseId: '8',
      what: `Stampede, ${CALLERS} callers, p99 wait: ${what}`,
      module: ms(spread(module)),
      baseline: ms(spread(baseline)),
      ratio,
      target: target ? '<= 1.5x' : '',
      verdict: target ? (ratio.median <= 1.5 ? 'met' : 'missed') : 'info',
    };
  };
  const calls = spread(upstreamCalls);
  // What the module's telemetry adds to the p99 wait, spread over the callers that waited: a per-caller cost.
  const perCallerUs = spread(b.map((bMs, i) => ((bMs - (c[i] as number)) * 1000) / CALLERS));
  const rows: Row[] = [
    row("(b) SDK registered vs (a) no SDK: the SDK's cost and the module's", b, a, false),
    row("(c) telemetry: false vs (a) no SDK: the SDK's context manager alone", c, a, false),
    row("(b) vs (c) telemetry: false, same SDK: the module's metrics and span", b, c, true),
    {
      caseId: '8',
      what: "Stampede: p99 wait added by the module's telemetry with an SDK, (b) - (c), per waiting caller",
      module: `${perCallerUs.median.toFixed(2)} us [${perCallerUs.min.toFixed(2)}-${perCallerUs.max.toFixed(2)}]`,
      baseline: '0',
      ratio: undefined,
      target: '',
      verdict: 'info',
    },
    {
      caseId: '8',
      what: 'Stampede with and without an SDK: upstream calls per stampede',
      module: `${calls.median} [${calls.min}-${calls.max}]${failed > 0 ? `, ${failed} callers failed` : ''}`,
      baseline: '1',
      ratio: undefined,
      target: 'exactly 1',
      verdict: calls.min === 1 && calls.max === 1 && failed === 0 ? 'met' : 'missed',
    },
  ];
  const expected: Expected = {
    sdkName: 'stampede-sdk',
    otherNames: ['stampede-none', 'stampede-off'],
    renewals: sdkLogins + sdkStampedes,
    measuredWaits: sdkWaits,
    wantedWaits: sdkStampedes * CALLERS,
  };
  return { rows, expected };
}

/** The SDK got every renewal, span and wait of the (b) sides, and nothing from the others. */
function recordedRow(recorded: SdkRecorded, expected: readonly Expected[]): Row {
  let renewals = 0;
  let waits = 0;
  let spans = 0;
  let wanted = { renewals: 0, waits: 0 };
  let strays = 0;
  for (const e of expected) {
    renewals += recorded.points.get(RENEWALS)?.get(e.sdkName) ?? 0;
    waits += e.measuredWaits;
    spans += recorded.spans.get(e.sdkName) ?? 0;
    wanted = { renewals: wanted.renewals + e.renewals, waits: wanted.waits + e.wantedWaits };
    for (const other of e.otherNames) {
      strays += [...recorded.points.values()].reduce((sum, byName) => sum + (byName.get(other) ?? 0), 0);
      strays += recorded.spans.get(other) ?? 0;
    }
  }
  const ok = renewals === wanted.renewals && spans === wanted.renewals && waits === wanted.waits && strays === 0;
  return {
    caseId: '8',
    what: 'What the SDK recorded: renewals, spans, waits while measured of (b); anything of (a) or (c)',
    module: `${renewals} renewals, ${spans} spans, ${waits.toLocaleString('en-US')} waits; ${strays}`,
    baseline: `${wanted.renewals}, ${wanted.renewals}, ${wanted.waits.toLocaleString('en-US')}; 0`,
    ratio: undefined,
    target: 'all of (b), none of the others',
    verdict: ok ? 'met' : 'missed',
  };
}

function nsText(value: Spread): string {
  return `${value.median.toFixed(1)} ns [${value.min.toFixed(1)}-${value.max.toFixed(1)}]`;
}
