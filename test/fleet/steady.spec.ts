import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { captureMonitor, startRedis, type MonitorCapture, type RedisProcess } from '../support/redis/redis-server';
import { expectFleet } from './expect-fleet';
import { figures, Fleet, lockTtlMs, sleep, summary, type FleetFigures } from './fleet';
import { expectCaptureClean } from './monitor';

/**
 * Issue 11, the headline: 8 processes x 50 callers, 3 s tokens, 60 s, one token shared through Redis
 * (ioredis): about one upstream renewal per token lifetime for the whole fleet, against about one per
 * process without a store. Every command Redis received meanwhile is captured (MONITOR) and checked for
 * tokens and secrets.
 */

const TTL_MS = 3_000;
const REQUEST_TIMEOUT_MS = 1_000;
// A lease (a dead holder's lock lapses within it), a request, and the polls and store calls after the lapse.
const MAX_WAIT_MS = REQUEST_TIMEOUT_MS + lockTtlMs() + 1_000;

describe('fleet steady state: 8 processes x 50 callers, 3 s tokens', () => {
  let redis: RedisProcess;
  const fleets: Fleet[] = [];
  const fakes: FakeTransferServer[] = [];
  const rows: FleetFigures[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);

  afterAll(async () => {
    for (const fleet of fleets) fleet.dispose();
    await Promise.all(fakes.map((fake) => fake.stop()));
    await redis?.stop();
    if (rows.length > 0) console.log(['fleet steady state', ...rows.map(summary)].join('\n'));
  }, 30_000);

  async function run(label: string, client: 'ioredis' | 'none', windowMs: number) {
    const fake = await new FakeTransferServer({ accessTtlMs: TTL_MS }).start();
    fakes.push(fake);
    const fleet = new Fleet(fake, { client, redisUrl: redis.url, callers: 50, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    fleets.push(fleet);
    await fleet.add(8);
    const from = Date.now();
    await sleep(windowMs);
    const to = Date.now();
    const reports = await fleet.stop();
    const f = figures(label, fleet, reports, { from, to });
    rows.push(f);
    return { fake, fleet, reports, f };
  }

  let monitor: MonitorCapture | undefined;
  let captured: { text: string; fake: FakeTransferServer } | undefined;

  it('with RedisTokenStore (ioredis), 60 s: at most 1.1 renewals per token lifetime fleet-wide; nothing expired, reused or failed', async () => {
    monitor = await captureMonitor(redis.port);
    const { fake, fleet, reports, f } = await run('8x50 RedisTokenStore(ioredis)', 'ioredis', 60_000);
    captured = { text: await monitor.stop(), fake };
    expectFleet(f, fleet, { maxPerLifetime: 1.1, maxWaitMs: MAX_WAIT_MS });
    expect(reports).toHaveLength(8);
    // Every process served the shared token: all of them called, none of them failed to start.
    for (const report of reports) expect(report.calls).toBeGreaterThan(100);
  }, 150_000);

  it('without a store, the same shape: each process renews on its own (more than 4 renewals per lifetime)', async () => {
    const { fleet, f } = await run('8x50 no store (per process)', 'none', 10_000);
    expectFleet(f, fleet, { minPerLifetime: 4, maxWaitMs: MAX_WAIT_MS });
  }, 90_000);

  it('MONITOR: what Redis received during the 60 s run holds no token and no secret, and is the store at work', () => {
    expect(captured).toBeDefined();
    const { text, fake } = captured as { text: string; fake: FakeTransferServer };
    expectCaptureClean([text], fake);
  });
});
