import { FakeTransferServer } from '../../lib/testing';
import { figures, Fleet, sleep, type ClientKind, type FleetFigures } from '../../test/fleet/fleet';
import { startRedis, type RedisProcess } from '../../test/support/redis/redis-server';
import type { BenchConfig } from '../support/config';
import type { Row } from '../support/report';
import { median, spread, type Spread } from '../support/stats';

/** Tokens of 3 s: a lone process renews one every 1.4 to 2.2 s, so a run of a few seconds spans several. */
const TOKEN_TTL_MS = 3_000;
const CALLERS = 10;

/**
 * Case 7: a fleet of N real processes (Nest application contexts of the built package, child processes)
 * against one fake upstream: upstream renewals per token lifetime with `RedisTokenStore` (on a
 * redis-server of the bench's own) and without a store, side by side; and the cold start of one more
 * process with a usable token stored, against one that must log in. "Per lifetime" counts the fleet's
 * renewals per the time a token is served (test/fleet/fleet.ts, `figures`): 1 when the fleet renews once
 * each time its token goes stale, N when N processes renew their own.
 */
export async function fleet(config: BenchConfig): Promise<Row[]> {
  const sizes = config.quick ? [1, 4] : [1, 2, 4, 8, 16];
  const windowMs = config.quick ? 6_000 : 15_000;
  const redis = await startRedis();
  const rows: Row[] = [];
  try {
    for (const n of sizes) {
      const shared = await run(n, 'ioredis', redis, windowMs);
      const alone = await run(n, 'none', redis, windowMs);
      rows.push({
        caseId: '7',
        what: `Fleet of ${n}: upstream renewals per token lifetime, RedisTokenStore vs none`,
        module: perLifetime(shared),
        baseline: perLifetime(alone),
        ratio: spread([shared.perLifetime / alone.perLifetime]),
        target: '<= 1.1 per lifetime',
        verdict: shared.perLifetime <= 1.1 && clean(shared) && clean(alone) ? 'met' : 'missed',
      });
    }
    rows.push(...(await coldStart(config, redis)));
  } finally {
    await redis.stop();
  }
  return rows;
}

/** One fleet of `n`, warmed up for one lifetime, measured over `windowMs`. */
async function run(n: number, client: ClientKind, redis: RedisProcess, windowMs: number): Promise<FleetFigures> {
  await redis.command('FLUSHALL'); // the bench's own server: every run starts with nothing stored
  const fake = await new FakeTransferServer({ accessTtlMs: TOKEN_TTL_MS }).start();
  const group = new Fleet(fake, { client, redisUrl: redis.url, callers: CALLERS });
  try {
    await group.add(n);
    await sleep(TOKEN_TTL_MS);
    const from = Date.now();
    await sleep(windowMs);
    const to = Date.now();
    return figures(`${n} ${client}`, group, await group.stop(), { from, to });
  } finally {
    group.dispose();
    await fake.stop();
  }
}

/** Time to the first token of a process that starts next to a running fleet: with a stored token, and without. */
async function coldStart(config: BenchConfig, redis: RedisProcess): Promise<Row[]> {
  const stored: { ms: number[]; upstream: number[] } = { ms: [], upstream: [] };
  const login: { ms: number[]; upstream: number[] } = { ms: [], upstream: [] };
  for (let i = 0; i < config.runs; i++) {
    for (const [client, into] of [
      ['ioredis', stored],
      ['none', login],
    ] as const) {
      await redis.command('FLUSHALL');
      const fake = await new FakeTransferServer({ accessTtlMs: 600_000 }).start();
      const group = new Fleet(fake, { client, redisUrl: redis.url, callers: 1 });
      try {
        await group.add(1); // the token is stored (or not)
        const [late] = await group.add(1);
        const ready = await late!.ready;
        into.ms.push(ready.startMs);
        into.upstream.push(ready.upstream);
        await group.stop();
      } finally {
        group.dispose();
        await fake.stop();
      }
    }
  }
  const ratio = spread(stored.ms.map((ms, i) => ms / (login.ms[i] as number)));
  return [
    {
      caseId: '7',
      what: 'Cold start next to a fleet: init to first token, stored vs login (loopback fake)',
      module: ms(spread(stored.ms)),
      baseline: ms(spread(login.ms)),
      ratio,
      target: '',
      verdict: 'info',
    },
    {
      caseId: '7',
      what: 'Cold start next to a fleet: upstream calls of the new process',
      module: String(median(stored.upstream)),
      baseline: String(median(login.upstream)),
      ratio: undefined,
      target: '0 with a stored token',
      verdict: Math.max(...stored.upstream) === 0 ? 'met' : 'missed',
    },
  ];
}

function perLifetime(f: FleetFigures): string {
  return `${f.perLifetime.toFixed(2)} (${f.renewals} renewals in ${(f.windowMs / 1_000).toFixed(0)} s, ${f.tokensInUse.toFixed(1)} tokens in use)`;
}

/** No caller error, no expired token handed out, no refresh token used twice. */
function clean(f: FleetFigures): boolean {
  return f.callerErrors === 0 && f.expiredHandedOut === 0 && f.refreshReused === 0;
}

function ms(value: Spread): string {
  return `${value.median.toFixed(1)} ms [${value.min.toFixed(1)}-${value.max.toFixed(1)}]`;
}
