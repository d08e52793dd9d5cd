import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';
import { expectFleet } from './expect-fleet';
import { figures, Fleet, lockTtlMs, sleep, summary, type FleetFigures } from './fleet';

/**
 * Issue 11, faults: Redis killed and restarted empty, Redis paused, the lock holder killed mid-renewal.
 * Through each: no caller error, no expired token, no refresh token used twice, no caller waiting longer
 * than requestTimeoutMs plus the lock's lifetime; and renewals are back to one per token lifetime within
 * two lifetimes (measured over three lifetimes that start two lifetimes after the fault ended).
 */

const TTL_MS = 3_000;
const REQUEST_TIMEOUT_MS = 1_000;
const LOCK_TTL_MS = lockTtlMs();
const MAX_WAIT_MS = REQUEST_TIMEOUT_MS + LOCK_TTL_MS + 1_000; // and the polls and store calls after a lapse
const CALLERS = 10;

interface Outcome {
  f: FleetFigures;
  fleet: Fleet;
  /** Keys in Redis when the run ended. */
  keys: string[];
}

/** A fleet of `processes` on its own Redis and fake; `fault` returns when the fault ended. */
async function withFleet(
  label: string,
  processes: number,
  fault: (fleet: Fleet, redis: RedisProcess, fake: FakeTransferServer) => Promise<number>,
  cleanup: (() => Promise<void>)[],
): Promise<Outcome> {
  const redis = await startRedis();
  const fake = await new FakeTransferServer({ accessTtlMs: TTL_MS }).start();
  const fleet = new Fleet(fake, {
    client: 'ioredis',
    redisUrl: redis.url,
    callers: CALLERS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  cleanup.push(async () => {
    fleet.dispose();
    await fake.stop();
    await redis.stop();
  });
  await fleet.add(processes);
  await sleep(TTL_MS); // a lifetime of steady state first
  const ended = await fault(fleet, redis, fake);
  const from = ended + 2 * TTL_MS;
  const to = from + 3 * TTL_MS;
  await sleep(to - Date.now());
  const keys = (await redis.command('KEYS', '*')).split('\n').filter(Boolean);
  const reports = await fleet.stop();
  expect(reports).toHaveLength(fleet.workers.filter((w) => w.killedAt === undefined).length);
  return { f: figures(label, fleet, reports, { from, to }), fleet, keys };
}

describe(`fleet faults (4 processes each, 3 s tokens, requestTimeoutMs 1 s, lock lifetime ${LOCK_TTL_MS / 1_000} s)`, () => {
  const cleanup: (() => Promise<void>)[] = [];
  const rows: FleetFigures[] = [];
  let killed: Outcome;
  let paused: Outcome;

  afterAll(async () => {
    await Promise.all(cleanup.map((stop) => stop()));
    if (rows.length > 0) console.log(['fleet faults', ...rows.map(summary)].join('\n'));
  }, 30_000);

  // The two Redis faults run side by side (4 + 4 processes, each fleet on its own Redis and fake): they
  // share nothing but the CPU, and the suite stays within its time budget.
  beforeAll(async () => {
    [killed, paused] = await Promise.all([
      withFleet(
        'Redis SIGKILL 5 s, restarted empty',
        4,
        async (_fleet, redis, fake) => {
          await midRenewal(fake);
          await redis.kill();
          await sleep(5_000);
          await redis.restart();
          return Date.now();
        },
        cleanup,
      ),
      withFleet(
        'Redis SIGSTOP 3 s',
        4,
        async (_fleet, redis, fake) => {
          await midRenewal(fake);
          await redis.pause();
          await sleep(3_000);
          await redis.resume();
          return Date.now();
        },
        cleanup,
      ),
    ]);
    rows.push(killed.f, paused.f);
  }, 120_000);

  it('Redis killed for 5 s then restarted empty: callers never notice; the fleet shares one token again', () => {
    expectFleet(killed.f, killed.fleet, { maxPerLifetime: 1.1, maxWaitMs: MAX_WAIT_MS });
    // The outage was seen (and logged once per process), and the restarted, empty Redis holds the shared entry.
    expect(killed.fleet.stderr()).toMatch(/token store failed/);
    expect(killed.keys.some((key) => key.endsWith(':token'))).toBe(true);
  });

  it('Redis paused (SIGSTOP) for 3 s: callers never notice; the fleet shares one token again', () => {
    expectFleet(paused.f, paused.fleet, { maxPerLifetime: 1.1, maxWaitMs: MAX_WAIT_MS });
    expect(paused.fleet.stderr()).toMatch(/token store failed/);
    expect(paused.keys.some((key) => key.endsWith(':token'))).toBe(true);
  });

  it('the lock holder killed (SIGKILL) mid-renewal: the rest carry on, and renew once its lock lapses', async () => {
    let held: { at: number; status: unknown } | undefined;
    let holderPid = 0;
    let lockPttl = '';
    const outcome = await withFleet(
      'lock holder SIGKILL mid-renewal',
      6,
      async (fleet, redis, fake) => {
        const next = fleet.received.length;
        // The next renewal is held 2 s by the fake: its sender holds the lock meanwhile.
        fake.failNext('any', { kind: 'delay', ms: 2_000 });
        await fake.waitForCalls(fake.calls.total + 1);
        const request = fleet.received[next];
        if (request === undefined) throw new Error('the fake counted a request its server did not see');
        const holder = await fleet.senderOf(request);
        holder.kill('SIGKILL');
        held = request;
        holderPid = holder.pid;
        await holder.exited;
        // The dead holder's lock is still there, and lapses on its own.
        lockPttl = await redis.command('PTTL', await lockKey(redis));
        return request.at + LOCK_TTL_MS; // when its lock lapsed at the latest
      },
      cleanup,
    );
    rows.push(outcome.f);
    expect(holderPid).toBeGreaterThan(0);
    // Killed while the fake held its request: the answer never reached it.
    expect(held?.status).toBe('aborted');
    expect(Number(lockPttl)).toBeGreaterThan(0);
    expect(outcome.f.upstreamPerProcess).toHaveLength(6);
    expectFleet(outcome.f, outcome.fleet, { maxPerLifetime: 1.1, maxWaitMs: MAX_WAIT_MS });
    // When the dead holder's lock lapses, one renewal: one waiter takes the lock and renews, the others wait
    // for its token rather than each logging in. (The next one comes when that token goes stale, 1.4 s on.)
    // Counted on the server's arrival timeline, the one `held` comes from (the fake's own record of the held
    // request is stamped a few ms later, once its body is read: it must not count as the next renewal).
    const { received } = outcome.fleet;
    const next = received.slice(received.indexOf(held as (typeof received)[number]) + 1);
    const first = next[0];
    const atLapse = first === undefined ? 0 : next.filter((r) => r.at < first.at + 1_000).length;
    if (atLapse !== 1) console.log(outcome.fleet.evidence());
    expect({ atLapse, afterLockLifetime: (first?.at ?? 0) - (held?.at ?? 0) >= LOCK_TTL_MS - 2_000 }).toEqual({
      atLapse: 1,
      afterLockLifetime: true,
    });
  }, 120_000);
});

/**
 * Returns while a renewal is in flight: the fake holds its answer 300 ms, so a fault started now finds the
 * holder about to write the new token (and the others waiting on the store), whatever the phase of the run.
 */
async function midRenewal(fake: FakeTransferServer): Promise<void> {
  fake.failNext('any', { kind: 'delay', ms: 300 });
  await fake.waitForCalls(fake.calls.total + 1);
}

/** The one renewal lock's key (the store's names hold no secret: `<prefix>{<id>}:lock`). */
async function lockKey(redis: RedisProcess): Promise<string> {
  const keys = (await redis.command('KEYS', '*:lock')).split('\n').filter(Boolean);
  if (keys.length !== 1) throw new Error(`expected one lock key, found ${JSON.stringify(keys)}`);
  return keys[0] as string;
}
