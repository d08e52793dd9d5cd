import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { TokenLifecycle } from '../../lib/token-lifecycle/token-lifecycle';
import { collectGarbage, settle, type BenchConfig } from '../support/config';
import type { Row } from '../support/report';
import { spread, type Spread } from '../support/stats';
import { StubTokenEndpoint } from '../support/stub-endpoint';

const CYCLES = 100_000;
const WARMUP_CYCLES = 5_000;
const MB = 2 ** 20;

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

function heapUsedAfterGc(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/**
 * Case 5: 100,000 refresh cycles (`forceRefresh()` in a loop: renewal, validation of the answer into a
 * cached token, events, the stale-time timer re-armed) on the Nest-free lifecycle with an in-memory
 * endpoint. Heap after against heap before (both after a full GC), and time per cycle in the first
 * against the last 10% of the cycles.
 */
export async function longRun(config: BenchConfig): Promise<Row[]> {
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
    return [
      {
        caseId: '5',
        what: 'Long run: heap growth',
        module: 'not measured: run node with --expose-gc',
        baseline: '',
        ratio: undefined,
        target: '<= 2 MB',
        verdict: 'pending',
      },
    ];
  }
  const options = resolveTransferAuthOptions({
    agentId: 'bench-agent',
    agentSecret: 'bench-secret',
    baseUrl: 'http://127.0.0.1:9',
  });
  const growthMb: number[] = [];
  const lateOverEarly: number[] = [];
  const earlyUs: number[] = [];
  const lateUs: number[] = [];
  const timerDelta: number[] = [];
  const window = CYCLES / 10;
  for (let run = 0; run < config.runs; run++) {
    let events = 0;
    const lifecycle = new TokenLifecycle(options, {
      endpoint: new StubTokenEndpoint(3_600_000),
      hooks: { log: () => undefined, emit: () => void events++ },
    });
    try {
      await lifecycle.start();
      for (let i = 0; i < WARMUP_CYCLES; i++) await lifecycle.forceRefresh();
      await settle();
      const timersBefore = timeouts();
      const before = heapUsedAfterGc();
      const marks = new Float64Array(CYCLES + 1);
      marks[0] = performance.now();
      for (let i = 1; i <= CYCLES; i++) {
        await lifecycle.forceRefresh();
        marks[i] = performance.now();
      }
      await settle();
      const after = heapUsedAfterGc();
      timerDelta.push(timeouts() - timersBefore);
      const early = ((marks[window] as number) - (marks[0] as number)) / window;
      const late = ((marks[CYCLES] as number) - (marks[CYCLES - window] as number)) / window;
      growthMb.push((after - before) / MB);
      earlyUs.push(early * 1000);
      lateUs.push(late * 1000);
      lateOverEarly.push(late / early);
      if (events < CYCLES) throw new Error(`expected an event per cycle, got ${events}`);
    } finally {
      lifecycle.close();
    }
  }
  const growth = spread(growthMb);
  const slope = spread(lateOverEarly);
  const timers = spread(timerDelta);
  return [
    {
      caseId: '5',
      what: `Long run: heap after - before ${CYCLES / 1000}k cycles`,
      module: `${signed(growth.median)} MB [${signed(growth.min)} to ${signed(growth.max)}]`,
      baseline: '0 MB',
      ratio: undefined,
      target: 'within 2 MB',
      verdict: Math.max(Math.abs(growth.min), Math.abs(growth.max)) <= 2 ? 'met' : 'missed',
    },
    {
      caseId: '5',
      what: 'Long run: time per cycle, last 10% vs first 10%',
      module: us(spread(lateUs)),
      baseline: us(spread(earlyUs)),
      ratio: slope,
      target: '<= 1.2x (flat)',
      verdict: slope.median <= 1.2 ? 'met' : 'missed',
    },
    {
      caseId: '5',
      what: 'Long run: live timers after - before',
      module: `${timers.median} [${timers.min}-${timers.max}]`,
      baseline: '0',
      ratio: undefined,
      target: '0',
      verdict: timers.max === 0 && timers.min === 0 ? 'met' : 'missed',
    },
  ];
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

function us(value: Spread): string {
  return `${value.median.toFixed(2)} us [${value.min.toFixed(2)}-${value.max.toFixed(2)}]`;
}
