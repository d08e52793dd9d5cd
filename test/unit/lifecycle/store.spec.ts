import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type { StoredTransferToken, TransferTokenStore } from '../../../lib/token-store/transfer-token-store.interface';
import { inspect } from 'node:util';
import { answer, flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { ProxyStore } from '../support/test-stores';
import { FAST_RETRY, STALE_AT, useFakeClock } from './support';

describe('TokenLifecycle: the TransferTokenStore seam', () => {
  let h: Harness;
  let others: Harness[] = [];
  useFakeClock(() => h);
  afterEach(() => {
    for (const other of others) other.lifecycle.close();
    others = [];
  });

  /** Two lifecycles of one agent sharing one store: a fleet of two, in one process. */
  async function pair(store: TransferTokenStore): Promise<[Harness, Harness]> {
    h = harness({ store, retry: FAST_RETRY });
    const b = harness({ store, retry: FAST_RETRY });
    others.push(b);
    await h.lifecycle.start();
    return [h, b];
  }

  it('a lifecycle that starts while a usable token is stored adopts it: no upstream call', async () => {
    const [a, b] = await pair(new InProcessTokenStore());
    await b.lifecycle.start();
    expect(b.stub.count).toBe(0);
    expect(await b.lifecycle.getAccessToken()).toBe(await a.lifecycle.getAccessToken());
    expect(b.lifecycle.getStatus().state).toBe('valid');
  });

  it('both stale at once: one upstream renewal, the refresh token used once, the other adopts', async () => {
    const [a, b] = await pair(new InProcessTokenStore());
    await b.lifecycle.start();
    await jest.advanceTimersByTimeAsync(STALE_AT);
    await jest.advanceTimersByTimeAsync(2_000); // the follower polls the store
    const upstream = [...a.stub.calls, ...b.stub.calls].slice(1);
    expect(upstream.map((c) => c.kind)).toEqual(['refresh']);
    const tokenA = await a.lifecycle.getAccessToken();
    expect(await b.lifecycle.getAccessToken()).toBe(tokenA);
    expect(a.lifecycle.getStatus().state).toBe('valid');
  });

  it('an invalidated token is never adopted back from the store', async () => {
    const store = new InProcessTokenStore();
    h = harness({ store });
    await h.lifecycle.start();
    const old = await h.lifecycle.getAccessToken();
    h.lifecycle.invalidate(old);
    await flush();
    expect(h.stub.count).toBe(2);
    expect(await h.lifecycle.getAccessToken()).not.toBe(old);
  });

  it('writes are fenced by version: a stale writer cannot overwrite a newer entry', async () => {
    const store = new InProcessTokenStore();
    const entry = (version: number): StoredTransferToken => ({
      version,
      accessToken: `A${version}`,
      staleAt: 1,
      usableUntil: 2,
      accessExpiresAt: 3,
      refreshExpiresAt: 4,
      obtainedAt: 0,
    });
    expect(await store.write('k', entry(1))).toBe(true);
    expect(await store.write('k', entry(2))).toBe(true);
    expect(await store.write('k', entry(2))).toBe(false); // a second writer of version 2
    expect(await store.write('k', entry(5))).toBe(false);
    expect((await store.read('k'))?.accessToken).toBe('A2');
    const lock = await store.lock('k', 1_000);
    expect(await store.lock('k', 1_000)).toBeUndefined();
    await lock?.release();
    expect(await store.lock('k', 1_000)).toBeDefined();
    expect(inspect(store)).toBe('InProcessTokenStore { keys: 1 }');
  });

  it.each(['throw', 'hang'] as const)(
    'a store that %ss never fails a caller: the process renews alone, logged once, then its recovery',
    async (mode) => {
      const store = new ProxyStore();
      store.mode = mode;
      h = harness({ store, retry: FAST_RETRY });
      const first = outcome(h.lifecycle.getAccessToken());
      await jest.advanceTimersByTimeAsync(2_000); // one store timeout (the lock), then alone
      expect(first.value()).toBe([...h.stub.issued.keys()][0]);
      await jest.advanceTimersByTimeAsync(STALE_AT + 2_000);
      expect(h.stub.count).toBe(2);
      expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][1]);
      const warnings = h.hooks.logs.filter((l) => /token store failed/.test(l.message));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).not.toContain('agent-secret-xyz');

      store.mode = 'ok';
      await h.lifecycle.forceRefresh();
      expect(h.hooks.logs.filter((l) => /token store answers again/.test(l.message))).toHaveLength(1);
      expect((await store.inner.read('token'))?.accessToken).toBe(await h.lifecycle.getAccessToken());
    },
  );

  it('cached reads never touch the store', async () => {
    const store = new ProxyStore();
    h = harness({ store });
    await h.lifecycle.start();
    const calls = store.calls;
    for (let i = 0; i < 1_000; i++) await h.lifecycle.getAccessToken();
    expect(store.calls).toBe(calls);
  });

  it('a follower whose leader never writes nor lets go carries on alone after a lease and a live renewal', async () => {
    const store = new InProcessTokenStore();
    await store.lock('token', 60_000); // a holder that keeps the lock and never writes
    h = harness({ store, requestTimeoutMs: 1_000 }, answer.ok());
    const caller = outcome(h.lifecycle.getAccessToken());
    await jest.advanceTimersByTimeAsync(18_000);
    expect(caller.settled()).toBe(false); // a live holder may still be renewing (3 attempts, their waits)
    // The lease (4 s), the store budget (1.5 s), 4 requests of 1 s and 2 waits of 5 s: then alone.
    await jest.advanceTimersByTimeAsync(2_000);
    await flush();
    expect(caller.value()).toBe([...h.stub.issued.keys()][0]);
    expect(h.stub.count).toBe(1);
  });
});
