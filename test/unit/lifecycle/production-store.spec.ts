import { rejectedSecretTags } from '../../../lib/upstream/agent-secret';
import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreContext,
  TransferTokenStoreLock,
} from '../../../lib/token-store/transfer-token-store.interface';
import { answer, flush, harness, outcome, upstreamError, type Harness, type Responder } from '../support/stub-endpoint';
import { ProxyStore } from '../support/test-stores';
import { codeOf, FAST_RETRY, useFakeClock } from './support';

/**
 * Issue 17, in the lifecycle (fake timers, in-process stores that behave as managed Redis does): a store
 * that goes back in time, replicas that do not confirm the spent mark, an entry evicted, a slow store, a
 * lock holder that pauses, the fleet's login cool-down, and the store's state in the status. The same
 * faults on real Redis processes are in test/fleet/production-redis.spec.ts.
 */

/** Every member of a fleet on one store; each with its own stub upstream. */
function fleetOf(store: TransferTokenStore, n: number, options: Parameters<typeof harness>[0] = {}): Harness[] {
  return Array.from({ length: n }, () => harness({ store, retry: FAST_RETRY, ...options }));
}

/** Logins answered 401, as Get token does for a wrong secret; the error carries the secret's tag as the client's does. */
function rejectLogins(tag = 'a1b2c3d4'): Responder {
  return (call) => {
    if (call.kind !== 'get') return void call.succeed();
    const error = upstreamError('INVALID_CREDENTIALS', 401);
    rejectedSecretTags.set(error, tag);
    call.fail(error);
  };
}

/** The secret the stub would send, by its tag (the real client reads the provider). */
function withSecretTag(h: Harness, tag: string): Harness {
  Object.assign(h.stub, { secretTag: () => Promise.resolve(tag) });
  return h;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await flush();
}

describe('issue 17: the lifecycle on the Redis people actually run', () => {
  let fleet: Harness[] = [];
  useFakeClock(() => fleet[0]);
  afterEach(() => {
    for (const member of fleet) member.lifecycle.close();
    fleet = [];
  });

  describe('a refresh token is never sent twice, also when the store goes back in time', () => {
    it('an entry older than the newest this process has seen (a restore, a lossy failover): login, said once', async () => {
      const store = new InProcessTokenStore();
      fleet = fleetOf(store, 1);
      const [x] = fleet as [Harness];
      await x.lifecycle.start();
      const before = await store.read('token'); // version 1, with the refresh token R1
      await jest.advanceTimersByTimeAsync(1_000); // each token expires a second after the one before
      await x.lifecycle.forceRefresh(); // spends R1 (version 2), stores version 3
      await settle();
      expect(x.stub.kinds()).toEqual(['get', 'refresh']);
      // Redis restarts from a snapshot taken before: version 1 with R1 again, under a new history.
      const restored = new InProcessTokenStore();
      await restored.write('token', before!);
      Object.assign(store, { entries: (restored as unknown as { entries: unknown }).entries });
      await jest.advanceTimersByTimeAsync(1_000);
      await x.lifecycle.forceRefresh();
      await jest.advanceTimersByTimeAsync(1_000);
      await x.lifecycle.forceRefresh();
      await settle();
      expect(x.stub.kinds()).toEqual(['get', 'refresh', 'get', 'refresh']); // R1 never again; the new one is fine
      expect(x.stub.calls[3]?.refreshToken).not.toBe(x.stub.calls[1]?.refreshToken);
      const said = x.hooks.logs.filter((l) =>
        /older entry \(version 1\) than this process has seen \(version 3\)/.test(l.message),
      );
      expect(said).toHaveLength(1);
    });

    it('a refresh token this process sent is not sent again, even when the store still offers it', async () => {
      const store = new ProxyStore();
      fleet = fleetOf(store, 1);
      const [x] = fleet as [Harness];
      await x.lifecycle.start();
      // The spent mark's answer is lost and never landed (a failover at that moment): the store still
      // holds R1 unspent, at the same version. R1 leaves the process once, then logins only.
      const spent = jest.spyOn(store, 'write').mockResolvedValueOnce(true).mockResolvedValueOnce(false);
      await jest.advanceTimersByTimeAsync(1_000);
      await x.lifecycle.forceRefresh(); // sends R1 (the write "landed"), its own write refused
      spent.mockRestore();
      await jest.advanceTimersByTimeAsync(1_000);
      await x.lifecycle.forceRefresh();
      await settle();
      const sent = x.stub.calls.filter((c) => c.kind === 'refresh').map((c) => c.refreshToken);
      expect(new Set(sent).size).toBe(sent.length);
      expect(x.stub.kinds()).toEqual(['get', 'refresh', 'get']);
    });

    it('a spent mark that no replica confirms: the renewal logs in, said once; a confirmed one refreshes', async () => {
      const store = new ProxyStore();
      let confirmed = false;
      const asked: number[] = [];
      Object.assign(store, {
        replicated: (_key: string, timeoutMs: number) => {
          asked.push(timeoutMs);
          return Promise.resolve(confirmed);
        },
      });
      fleet = fleetOf(store, 1);
      const [x] = fleet as [Harness];
      await x.lifecycle.start();
      await x.lifecycle.forceRefresh();
      await x.lifecycle.forceRefresh();
      confirmed = true;
      await x.lifecycle.forceRefresh();
      await settle();
      expect(x.stub.kinds()).toEqual(['get', 'get', 'get', 'refresh']);
      expect(asked).toHaveLength(3); // asked after each spent mark, never longer than its bound
      for (const ms of asked) expect(ms).toBeLessThanOrEqual(500);
      expect(x.hooks.logs.filter((l) => /not confirmed by a replica/.test(l.message))).toHaveLength(1);
    });
  });

  it('an entry that vanishes while a version is held (eviction): one warning naming maxmemory-policy', async () => {
    const store = new ProxyStore();
    fleet = fleetOf(store, 1);
    const [x] = fleet as [Harness];
    await x.lifecycle.start();
    for (let i = 0; i < 3; i++) {
      await settle();
      Object.assign(store.inner, { entries: new Map() }); // evicted
      await x.lifecycle.forceRefresh(); // its refresh token went through the store: a login
    }
    await settle();
    const said = x.hooks.logs.filter((l) => /vanished/.test(l.message));
    expect(said).toHaveLength(1);
    expect(said[0]?.message).toMatch(/maxmemory-policy.*noeviction or volatile-\*/);
    expect(x.hooks.events.filter((e) => e.type === 'token.failed')).toHaveLength(0);
  });

  describe('a slow store never slows callers more than a dead one', () => {
    it('callers get the token as the upstream answers: the write (900 ms) follows', async () => {
      const store = new ProxyStore();
      fleet = fleetOf(store, 1, { fetchOnStartup: false });
      const [x] = fleet as [Harness];
      const write = jest.spyOn(store, 'write');
      store.delayMs = 100;
      const caller = outcome(x.lifecycle.getAccessToken());
      await jest.advanceTimersByTimeAsync(3 * 100); // read, lock, read: then the upstream answers at once
      expect(caller.value()).toMatch(/^ACCESS-/);
      expect(write).toHaveBeenCalledTimes(1); // under way, not awaited
      store.delayMs = 900;
      const second = outcome(x.lifecycle.forceRefresh());
      await jest.advanceTimersByTimeAsync(1_500); // the store's budget: two calls of 900 ms do not fit
      expect(second.value()).toMatch(/^ACCESS-/);
    });

    it('one budget of 1.5 s for all store calls before the upstream, whatever each call takes', async () => {
      const store = new ProxyStore();
      store.delayMs = 1_400; // each call answers, just under the 2 s of one call
      fleet = fleetOf(store, 1, { fetchOnStartup: false });
      const [x] = fleet as [Harness];
      const caller = outcome(x.lifecycle.getAccessToken());
      await jest.advanceTimersByTimeAsync(1_499);
      expect(caller.settled()).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(caller.value()).toMatch(/^ACCESS-/); // 0.2: read, lock, read, write: 5.6 s
    });

    it('the budget of a background renewal is a third of what is left of the token (short tokens)', async () => {
      const store = new ProxyStore();
      fleet = fleetOf(store, 1, { retry: FAST_RETRY });
      const [x] = fleet as [Harness];
      x.stub.defaults = { lifetimeMs: 6_000 }; // 6 s: stale at 3.8 s, usable until 4.4 s
      await x.lifecycle.start();
      const first = await x.lifecycle.getAccessToken();
      store.mode = 'hang';
      await jest.advanceTimersByTimeAsync(3_900); // stale: a background renewal, the store hangs
      expect(await x.lifecycle.getAccessToken()).toBe(first);
      await jest.advanceTimersByTimeAsync(200); // ~170 ms of budget (a third of 0.5 s), then alone
      expect(x.stub.count).toBe(2);
      await settle();
      expect(await x.lifecycle.getAccessToken()).not.toBe(first);
    });
  });

  describe('the lock is a short lease', () => {
    it('its live holder extends it: a renewal of 12 s keeps others waiting, not renewing', async () => {
      const store = new InProcessTokenStore();
      fleet = fleetOf(store, 2, { requestTimeoutMs: 20_000 });
      const [x, y] = fleet as [Harness, Harness];
      await x.lifecycle.start();
      await y.lifecycle.start();
      await settle();
      x.stub.responder = answer.pending();
      const slow = outcome(x.lifecycle.forceRefresh());
      await flush();
      const held = x.stub.last();
      const waiting = outcome(y.lifecycle.forceRefresh());
      await jest.advanceTimersByTimeAsync(12_000); // three leases
      expect(y.stub.count).toBe(0); // y adopted x's token at startup, and never called the upstream since
      held.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(300);
      expect(slow.value()).toBe(waiting.value());
    });

    it('a holder that stopped extending (paused, killed) loses it within the lease: another renews', async () => {
      const store = new InProcessTokenStore();
      fleet = fleetOf(store, 1, { fetchOnStartup: false });
      const [y] = fleet as [Harness];
      await store.lock('token', 4_000); // taken by a holder that then froze
      const caller = outcome(y.lifecycle.getAccessToken());
      await jest.advanceTimersByTimeAsync(3_900);
      expect(caller.settled()).toBe(false);
      await jest.advanceTimersByTimeAsync(400); // the lapse, then the next poll
      expect(caller.value()).toMatch(/^ACCESS-/);
    });
  });

  describe('the agent account sees one fleet', () => {
    it('4 members with a wrong secret, a caller every 100 ms each for 20 s: as many logins as one process', async () => {
      const store = new InProcessTokenStore();
      fleet = fleetOf(store, 4, { fetchOnStartup: false }).map((m) => withSecretTag(m, 'a1b2c3d4'));
      for (const member of fleet) member.stub.responder = rejectLogins();
      const codes = new Map<string, number>();
      for (let t = 0; t < 20_000; t += 100) {
        for (const member of fleet) {
          member.lifecycle.getAccessToken().catch((error: unknown) => {
            codes.set(codeOf(error), (codes.get(codeOf(error)) ?? 0) + 1);
          });
        }
        await jest.advanceTimersByTimeAsync(100);
      }
      const logins = fleet.reduce((n, m) => n + m.stub.kinds().filter((k) => k === 'get').length, 0);
      // One process alone: 1 s, 2 s, 4 s, 8 s of cool-down: 5 logins in 20 s. 0.2's fleet: 4 x 5.
      expect(logins).toBeLessThanOrEqual(6);
      expect([...codes.keys()]).toEqual(['INVALID_CREDENTIALS']);
    });

    it('a member whose secret changed (rotated) logs in during the cool-down, and lifts it for all', async () => {
      const store = new InProcessTokenStore();
      fleet = fleetOf(store, 2, { fetchOnStartup: false });
      const [x, y] = fleet as [Harness, Harness];
      withSecretTag(x, 'a1b2c3d4');
      withSecretTag(y, 'a1b2c3d4');
      x.stub.responder = rejectLogins();
      await expect(x.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      await settle();
      await expect(y.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(y.stub.count).toBe(0); // the fleet's cool-down: no login of its own
      withSecretTag(y, 'feedbeef'); // its provider now answers the rotated secret
      await jest.advanceTimersByTimeAsync(100); // well inside the fleet's 1 s cool-down
      const token = await y.lifecycle.forceRefresh(); // past y's own cool-down; not the fleet's, but a new secret
      expect(y.stub.kinds()).toEqual(['get']);
      await settle();
      await jest.advanceTimersByTimeAsync(2_000); // x's own cool-down is over: it adopts, no login
      expect(await x.lifecycle.getAccessToken()).toBe(token);
      expect(x.stub.kinds()).toEqual(['get']);
    });
  });

  describe('the store state is visible', () => {
    it('getStatus().store: ok, degraded with the code on writes refused (OOM), never flapping; ok once writes work', async () => {
      const store = new ProxyStore();
      fleet = fleetOf(store, 1);
      const [x] = fleet as [Harness];
      await x.lifecycle.start();
      await settle();
      expect(x.lifecycle.getStatus().store).toEqual({ state: 'ok', since: expect.any(String) });
      const oom = jest
        .spyOn(store, 'write')
        .mockRejectedValue(new Error("OOM command not allowed when used memory > 'maxmemory'."));
      for (let i = 0; i < 5; i++) {
        await jest.advanceTimersByTimeAsync(1_000); // each token newer than the one before
        await x.lifecycle.forceRefresh(); // reads answer, writes fail
        await settle();
      }
      expect(x.lifecycle.getStatus().store).toEqual({
        state: 'degraded',
        since: expect.any(String),
        error: 'OOM',
      });
      const lines = x.hooks.logs.filter((l) => /token store/.test(l.message));
      expect(lines.map((l) => l.message)).toEqual([expect.stringMatching(/failed \(OOM on write\).*out of memory/)]);
      oom.mockRestore();
      await jest.advanceTimersByTimeAsync(1_000);
      await x.lifecycle.forceRefresh();
      await settle();
      expect(x.lifecycle.getStatus().store?.state).toBe('ok');
      expect(x.hooks.logs.filter((l) => /token store answers again/.test(l.message))).toHaveLength(1);
      expect(JSON.stringify(x.lifecycle.getStatus())).not.toMatch(/maxmemory/); // the code, never a message
    });

    it('a status asked for after 10 s without a store call probes it (a long token renews rarely)', async () => {
      const store = new ProxyStore();
      fleet = fleetOf(store, 1);
      const [x] = fleet as [Harness];
      await x.lifecycle.start();
      await settle();
      store.mode = 'throw'; // Redis died; the 10 min token needs no store call for 8 minutes
      await jest.advanceTimersByTimeAsync(9_000);
      const calls = store.calls;
      expect(x.lifecycle.getStatus().store?.state).toBe('ok'); // 9 s: as of the last call
      expect(store.calls).toBe(calls);
      await jest.advanceTimersByTimeAsync(1_000);
      x.lifecycle.getStatus(); // 10 s: starts one read
      x.lifecycle.getStatus(); // ... only one
      await settle();
      expect(store.calls).toBe(calls + 1);
      expect(x.lifecycle.getStatus().store).toMatchObject({ state: 'degraded', error: 'ECONNREFUSED' });
      for (let i = 0; i < 100; i++) await x.lifecycle.getAccessToken();
      expect(store.calls).toBe(calls + 1); // cached reads still never touch it
    });

    it('a failover refusal (READONLY on the lock) ends with the next answer of any kind, not only a lock', async () => {
      const store = new ProxyStore();
      fleet = fleetOf(store, 1);
      const [x] = fleet as [Harness];
      await x.lifecycle.start();
      await settle();
      const lock = jest
        .spyOn(store, 'lock')
        .mockRejectedValueOnce(new Error('READONLY You can not write against a read only replica.'));
      await jest.advanceTimersByTimeAsync(1_000);
      await x.lifecycle.forceRefresh(); // read answers, the lock is refused: renewed alone
      expect(x.lifecycle.getStatus().store).toMatchObject({ state: 'degraded', error: 'READONLY' });
      lock.mockRestore();
      await jest.advanceTimersByTimeAsync(11_000);
      x.lifecycle.getStatus(); // no store call for 10 s: one read, which answers
      await settle();
      expect(x.lifecycle.getStatus().store?.state).toBe('ok'); // a process that only adopts is not stuck
    });

    it('no store: no `store` in the status', async () => {
      fleet = [harness()];
      await fleet[0]!.lifecycle.start();
      expect('store' in fleet[0]!.lifecycle.getStatus()).toBe(false);
    });

    it('a store that reports a refused hint (NOPERM) through context.warn: said once per process', async () => {
      const inner = new InProcessTokenStore();
      const store: TransferTokenStore = {
        read: (key) => inner.read(key),
        lock: (key, ttl): Promise<TransferTokenStoreLock | undefined> => inner.lock(key, ttl),
        write: (key: string, entry: StoredTransferToken, context: TransferTokenStoreContext) => {
          context.warn?.('NOPERM', 'change hints (PUBLISH)');
          return inner.write(key, entry);
        },
      };
      fleet = fleetOf(store, 1);
      await fleet[0]!.lifecycle.start();
      for (let i = 0; i < 3; i++) await fleet[0]!.lifecycle.forceRefresh();
      await settle();
      const said = fleet[0]!.hooks.logs.filter((l) => /refused change hints/.test(l.message));
      expect(said.map((l) => l.message)).toEqual([expect.stringMatching(/\(NOPERM\).*ACL in docs\/fleet.md/)]);
      expect(fleet[0]!.lifecycle.getStatus().store?.state).toBe('ok'); // sharing works: polling
    });
  });
});
