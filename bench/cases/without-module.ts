import type { FakeTransferServer } from '../../lib/testing/fake-transfer-server';
import { authenticateEveryTime, refreshOn401, type ApiRequest } from '../support/clients';
import type { BenchConfig } from '../support/config';
import { createAuthContext, type AuthContext } from '../support/nest';
import type { Row } from '../support/report';
import { mean, percentile, ratios, spread, type Spread } from '../support/stats';
import { findAttachTransferAuth, moduleClient } from '../support/transfer-http';
import { startFake } from '../support/upstream';

/**
 * Access tokens live 5 s and requests arrive at a steady 1,000 per second (10 every 10 ms, whether or not
 * earlier ones have been answered, as traffic does): 10,000 requests take 10 s and see a token expire
 * about twice. (The module renews earlier than expiry: with such short lifetimes its margin and the 1 s
 * resolution of the upstream's Date header make it renew every 3-4 s.)
 */
const TOKEN_TTL_MS = 5_000;
const RATE_PER_S = 1_000;
const BATCH = 10;

type Kind = 'every' | 'on401' | 'module';

interface Load {
  /** Mean latency of one API request as its caller sees it (token handling included), ms. */
  meanMs: number;
  /** 99.9th percentile of the same: the requests that met an expired token. */
  p999Ms: number;
  /** Every request the upstream received: auth, refresh and API calls, 401s included. */
  upstream: number;
  answered401: number;
  renewals: number;
  failed: number;
}

/** `total` requests through `request`, `BATCH` at a time at `RATE_PER_S` (open loop). */
async function drive(request: ApiRequest, total: number): Promise<{ meanMs: number; p999Ms: number; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const one = async (): Promise<void> => {
    const start = performance.now();
    try {
      await request();
    } catch {
      failed++;
    }
    latencies.push(performance.now() - start);
  };
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  for (let sent = 0; sent < total; sent += BATCH) {
    const wait = start + (sent / RATE_PER_S) * 1000 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    for (let i = 0; i < BATCH && sent + i < total; i++) inflight.push(one());
  }
  await Promise.all(inflight);
  return { meanMs: mean(latencies), p999Ms: percentile(latencies, 99.9), failed };
}

async function measure(kind: Kind, total: number): Promise<Load | undefined> {
  const attach = findAttachTransferAuth();
  if (kind === 'module' && attach === undefined) return undefined;
  const fake: FakeTransferServer = await startFake({ accessTtlMs: TOKEN_TTL_MS });
  let ctx: AuthContext | undefined;
  try {
    let request: ApiRequest;
    if (kind === 'every') request = authenticateEveryTime(fake);
    else if (kind === 'on401') request = refreshOn401(fake);
    else {
      // The module's first token (fetched at init) counts: the baselines fetch theirs during the run.
      ctx = await createAuthContext({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url });
      const client = moduleClient(attach as NonNullable<typeof attach>, fake.url, ctx.auth);
      request = () => client.get('/v5/partner/transfer/agents');
    }
    const { meanMs, p999Ms, failed } = await drive(request, total);
    return {
      meanMs,
      p999Ms,
      failed,
      upstream: fake.calls.total,
      renewals: fake.calls.auth + fake.calls.refresh - (kind === 'every' ? total : 0),
      answered401: fake.requests.filter((r) => r.status === 401).length,
    };
  } finally {
    await ctx?.close();
    await fake.stop();
  }
}

/**
 * Case 3: the module's authenticated client against two ways of doing without it, per `total` API
 * requests (`GET /v5/partner/transfer/agents`): (a) Get token before every request, (b) the
 * axios-auth-refresh pattern (refresh when a request is answered 401).
 */
export async function withoutModule(config: BenchConfig): Promise<Row[]> {
  const total = config.quick ? 1_500 : 10_000;
  // 10 s per client and run: three runs (not five) keep the full case near 90 s.
  const runs = config.quick ? config.runs : Math.min(config.runs, 3);
  const kinds: Kind[] = ['every', 'on401', 'module'];
  const loads: Record<Kind, Load[]> = { every: [], on401: [], module: [] };
  let pending = false;
  for (let run = 0; run < runs; run++) {
    // Rotate the order, so that no client always runs first (cold) or last.
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(run + i) % kinds.length] as Kind;
      const load = await measure(kind, total);
      if (load === undefined) pending = true;
      else loads[kind].push(load);
    }
  }
  const rows: Row[] = [];
  const per = `per ${total.toLocaleString('en-US')} requests`;
  for (const [kind, label] of [
    ['every', '3a Get token every request'],
    ['on401', '3b refresh on 401'],
  ] as const) {
    const base = loads[kind];
    const mod = loads.module;
    const baseCalls = spread(base.map((l) => l.upstream));
    const baseMean = spread(base.map((l) => l.meanMs));
    const detail = (l: Load[]): string =>
      `${med(l, 'renewals')} renewals, ${med(l, 'answered401')} x 401${sum(l, 'failed') > 0 ? `, ${sum(l, 'failed')} failed` : ''}`;
    if (pending) {
      rows.push(
        pendingRow(label, `upstream calls ${per}`, `${count(baseCalls)} (${detail(base)})`),
        pendingRow(label, 'mean request latency', msText(baseMean)),
        pendingRow(label, 'p99.9 request latency', msText(spread(base.map((l) => l.p999Ms)))),
      );
      continue;
    }
    const ratioOf = (key: 'upstream' | 'meanMs' | 'p999Ms'): Spread =>
      spread(
        ratios(
          mod.map((l) => l[key]),
          base.map((l) => l[key]),
        ),
      );
    const row = (what: string, moduleText: string, baselineText: string, ratio: Spread): Row => ({
      caseId: label.slice(0, 2),
      what: `vs ${label.slice(3)}: ${what}`,
      module: moduleText,
      baseline: baselineText,
      ratio,
      target: '',
      verdict: 'info',
    });
    rows.push(
      row(
        `upstream calls ${per}`,
        `${count(spread(mod.map((l) => l.upstream)))} (${detail(mod)})`,
        `${count(baseCalls)} (${detail(base)})`,
        ratioOf('upstream'),
      ),
      row('mean request latency', msText(spread(mod.map((l) => l.meanMs))), msText(baseMean), ratioOf('meanMs')),
      row(
        'p99.9 request latency',
        msText(spread(mod.map((l) => l.p999Ms))),
        msText(spread(base.map((l) => l.p999Ms))),
        ratioOf('p999Ms'),
      ),
    );
  }
  return rows;
}

function pendingRow(label: string, what: string, baseline: string): Row {
  return {
    caseId: label.slice(0, 2),
    what: `vs ${label.slice(3)}: ${what}`,
    module: 'pending (no attachTransferAuth)',
    baseline,
    ratio: 'pending',
    target: '',
    verdict: 'pending',
  };
}

function med(loads: Load[], key: 'renewals' | 'answered401'): number {
  return spread(loads.map((l) => l[key])).median;
}

function sum(loads: Load[], key: 'failed'): number {
  return loads.reduce((total, l) => total + l[key], 0);
}

function count(value: Spread): string {
  return `${value.median} [${value.min}-${value.max}]`;
}

function msText(value: Spread): string {
  return `${value.median.toFixed(3)} ms [${value.min.toFixed(3)}-${value.max.toFixed(3)}]`;
}
