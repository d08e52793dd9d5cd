import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import {
  captureMonitor,
  startRedis,
  startRedisCluster,
  type RedisClusterProcess,
  type RedisProcess,
} from '../support/redis/redis-server';
import { expectFleet } from './expect-fleet';
import { figures, Fleet, lockTtlMs, sleep, summary, type FleetFigures, type FleetOptions } from './fleet';
import { expectCaptureClean } from './monitor';

/**
 * Issue 11 with every client the store takes (node-redis v5, ioredis v6, an ioredis Cluster on 3 masters)
 * in the steady shape, shorter; then what a fleet does for a process that starts late and for a 401.
 */

const TTL_MS = 3_000;
const REQUEST_TIMEOUT_MS = 1_000;
// A lease (a dead holder's lock lapses within it), a request, and the polls and store calls after the lapse.
const MAX_WAIT_MS = REQUEST_TIMEOUT_MS + lockTtlMs() + 1_000;
const WINDOW_MS = 12_000;

interface Run {
  f: FleetFigures;
  fleet: Fleet;
  fake: FakeTransferServer;
}

describe('fleet steady state with each client (4 processes x 20 callers, 3 s tokens, 12 s)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  const rows: FleetFigures[] = [];
  const runs = new Map<string, Run>();

  async function run(label: string, options: Omit<FleetOptions, 'callers'>, during?: () => Promise<void>) {
    const fake = await new FakeTransferServer({ accessTtlMs: TTL_MS }).start();
    const fleet = new Fleet(fake, { ...options, callers: 20, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    cleanup.push(async () => {
      fleet.dispose();
      await fake.stop();
    });
    await fleet.add(4);
    const from = Date.now();
    await (during?.() ?? sleep(WINDOW_MS));
    const to = Date.now();
    const f = figures(label, fleet, await fleet.stop(), { from, to });
    rows.push(f);
    runs.set(label, { f, fleet, fake });
  }

  afterAll(async () => {
    await Promise.all(cleanup.map((stop) => stop()));
    if (rows.length > 0) console.log(['fleet clients', ...rows.map(summary)].join('\n'));
  }, 30_000);

  // node-redis and ioredis v6 side by side (4 + 4 processes, each on its own Redis and fake).
  beforeAll(async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    cleanup.push(async () => {
      await Promise.all([a.stop(), b.stop()]);
    });
    await Promise.all([
      run('node-redis v5 createClient', { client: 'node-redis', redisUrl: a.url }),
      run('ioredis v6 Redis', { client: 'ioredis-v6', redisUrl: b.url }),
    ]);
  }, 90_000);

  it.each(['node-redis v5 createClient', 'ioredis v6 Redis'])(
    '%s: at most 1.1 renewals per lifetime; nothing expired, reused or failed',
    (label) => {
      const { f, fleet } = runs.get(label) as Run;
      expectFleet(f, fleet, { maxPerLifetime: 1.1, maxWaitMs: MAX_WAIT_MS });
    },
  );

  it('ioredis Cluster on 3 masters: the same, all keys in one slot, and MONITOR on every node sees no token or secret', async () => {
    const cluster: RedisClusterProcess = await startRedisCluster();
    cleanup.push(() => cluster.stop());
    const monitors = await Promise.all(cluster.nodes.map((node) => captureMonitor(node.port)));
    await run('ioredis Cluster (3 masters)', { client: 'cluster', clusterNodes: cluster.startupNodes });
    const captures = await Promise.all(monitors.map((monitor) => monitor.stop()));
    const { f, fleet, fake } = runs.get('ioredis Cluster (3 masters)') as Run;
    expectFleet(f, fleet, { maxPerLifetime: 1.1, maxWaitMs: MAX_WAIT_MS });
    const evalsPerNode = expectCaptureClean(captures, fake);
    // One hash slot per agent: every script ran on one node.
    expect(evalsPerNode.filter((n) => n > 0)).toHaveLength(1);
  }, 90_000);
});

describe('fleet with 60 s tokens (no scheduled renewal in the way): a late starter, a 401', () => {
  let redis: RedisProcess;
  let fake: FakeTransferServer;
  let fleet: Fleet;
  const renewals = (): number => fake.calls.auth + fake.calls.refresh;

  beforeAll(async () => {
    redis = await startRedis();
    fake = await new FakeTransferServer({ accessTtlMs: 60_000 }).start();
    fleet = new Fleet(fake, {
      client: 'ioredis',
      redisUrl: redis.url,
      callers: 5,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
  }, 30_000);

  afterAll(async () => {
    fleet?.dispose();
    await fake?.stop();
    await redis?.stop();
  }, 30_000);

  it('3 processes starting together log in once; a 4th started while the token is stored makes no upstream call', async () => {
    await fleet.add(3);
    expect(renewals()).toBe(1);
    const shared = await fleet.workers[0]!.current();
    const before = { ...fake.calls };
    const [late] = await fleet.add(1);
    expect(await late!.current()).toBe(shared);
    expect(late!.upstream).toEqual([]);
    expect(fake.calls).toEqual(before);
  }, 90_000);

  it('invalidate(token) in one process (a 401): every process drops it, and one renewal follows', async () => {
    const before = renewals();
    const [first] = fleet.workers;
    const sentBefore = fleet.workers.map((w) => w.upstream.length);
    const dropped = await first!.invalidate();
    const invalidatedAt = Date.now();
    let tokens: string[] = [];
    for (let i = 0; i < 40; i++) {
      tokens = await Promise.all(fleet.workers.map((w) => w.current()));
      if (tokens.every((t) => t !== dropped)) break;
      await sleep(50);
    }
    const convergedMs = Date.now() - invalidatedAt;
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(dropped);
    expect(convergedMs).toBeLessThan(2_000);
    await sleep(1_000); // a second renewal, if any, would show by now
    expect(renewals() - before).toBe(1);
    const reports = await fleet.stop();
    expect(reports.map((r) => r.errors)).toEqual(reports.map(() => ({})));
    // Nobody served the dropped token after the fleet converged.
    for (const report of reports) {
      const last = report.tokens.find(([token]) => token === dropped)?.[2] ?? 0;
      expect(last).toBeLessThanOrEqual(invalidatedAt + convergedMs);
    }
    // The renewal was the invalidating process' own; the others adopted its token from the store.
    expect(fleet.workers.map((w, i) => w.upstream.length - (sentBefore[i] as number))).toEqual([1, 0, 0, 0]);
    console.log(`fleet 401: 4 processes switched from the invalidated token within ${convergedMs} ms; 1 renewal`);
  }, 60_000);
});
