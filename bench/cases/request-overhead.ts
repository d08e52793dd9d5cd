import { AGENTS_PATH } from '../../lib/transfer-auth.constants';
import { fixedHeader } from '../support/clients';
import type { BenchConfig } from '../support/config';
import { createAuthContext } from '../support/nest';
import type { Row } from '../support/report';
import { median, ratios, spread, type Spread } from '../support/stats';
import { runTasks } from '../support/tinybench';
import { findAttachTransferAuth, moduleClient } from '../support/transfer-http';
import { startFake } from '../support/upstream';

/**
 * Case 4: one `GET /v5/partner/transfer/agents` through the module's authenticated client against the
 * same request through a bare axios instance with a fixed `Authorization` header (same token, same
 * connection pool, same fake), one after the other in each tinybench run.
 */
export async function requestOverhead(config: BenchConfig): Promise<Row[]> {
  const attach = findAttachTransferAuth();
  const fake = await startFake();
  const ctx = await createAuthContext({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url });
  try {
    const token = await ctx.auth.getAccessToken();
    const bare = fixedHeader(fake, token);
    if (attach === undefined) {
      const samples: number[] = [];
      for (let i = 0; i < 50; i++) {
        const start = performance.now();
        await bare();
        samples.push(performance.now() - start);
      }
      return [
        {
          caseId: '4',
          what: 'Authenticated request, p50 latency',
          module: 'pending (no attachTransferAuth)',
          baseline: `${median(samples).toFixed(3)} ms (median of 50)`,
          ratio: 'pending',
          target: '<= 1.05x',
          verdict: 'pending',
        },
      ];
    }
    const client = moduleClient(attach, fake.url, ctx.auth);
    const moduleMs: number[] = [];
    const bareMs: number[] = [];
    const before = fake.calls.auth + fake.calls.refresh;
    // Run -1 warms both clients (JIT, connection pool) and is not recorded: otherwise the first run, cold
    // and about 2x slower, lands on whichever client the rotation puts first.
    for (let run = -1; run < config.runs; run++) {
      const [authenticated, fixed] = await runTasks(
        [
          { name: 'authenticated client', fn: () => client.get(AGENTS_PATH) },
          { name: 'bare axios, fixed header', fn: bare },
        ],
        { timeMs: config.quick ? 400 : 1_500, warmupMs: config.quick ? 100 : 300, rotation: Math.max(run, 0) },
      );
      if (run < 0) continue;
      moduleMs.push((authenticated as { p50: number }).p50);
      bareMs.push((fixed as { p50: number }).p50);
    }
    const renewals = fake.calls.auth + fake.calls.refresh - before;
    const ratio = spread(ratios(moduleMs, bareMs));
    const extraUs = spread(moduleMs.map((ms, i) => (ms - (bareMs[i] as number)) * 1000));
    return [
      {
        caseId: '4',
        what: 'Authenticated request, p50 latency',
        module: ms(spread(moduleMs)),
        baseline: ms(spread(bareMs)),
        ratio,
        target: '<= 1.05x',
        verdict: ratio.median <= 1.05 ? 'met' : 'missed',
      },
      {
        caseId: '4',
        what: 'Authenticated request: added time per request',
        module: `${extraUs.median.toFixed(1)} us [${extraUs.min.toFixed(1)}-${extraUs.max.toFixed(1)}]`,
        baseline: '0',
        ratio: undefined,
        target: '',
        verdict: 'info',
      },
      {
        caseId: '4',
        what: 'Authenticated request: token renewals meanwhile',
        module: String(renewals),
        baseline: '0',
        ratio: undefined,
        target: '0',
        verdict: renewals === 0 ? 'met' : 'missed',
      },
    ];
  } finally {
    await ctx.close();
    await fake.stop();
  }
}

function ms(value: Spread): string {
  return `${value.median.toFixed(3)} ms [${value.min.toFixed(3)}-${value.max.toFixed(3)}]`;
}
