import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreLock,
} from '../../lib/token-store/transfer-token-store.interface';
import { FAST_RETRY, useFakeClock } from '../unit/lifecycle/support';
import { flush, harness, outcome, type Harness } from '../unit/support/stub-endpoint';

/**
 * Finding: a write that times out in StoreAccess (2 s) but lands in the store later leaves the writer at
 * `version: 0` ("never in the store") while the store and the fleet hold its refresh token. When that
 * process later renews with the store down (for it), `renewUpstream` takes `version === 0` as "no other
 * process has this refresh token" and sends it upstream alone; the rest of the fleet, whose store works,
 * sends the same refresh token through the store: one refresh token used twice.
 */

/** One member's view of a shared store: its own faults, the same data. */
class View implements TransferTokenStore {
  writeDelayMs = 0;
  down = false;
  constructor(private readonly inner: InProcessTokenStore) {}
  read(key: string): Promise<StoredTransferToken | undefined> {
    return this.down ? Promise.reject(new Error('ECONNRESET')) : this.inner.read(key);
  }
  async write(key: string, entry: StoredTransferToken): Promise<boolean> {
    if (this.down) throw new Error('ECONNRESET');
    // Slow (a stalled server, a failover): the write still lands, after the lifecycle stopped waiting.
    if (this.writeDelayMs > 0 && entry.refreshToken !== undefined)
      await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
    return this.inner.write(key, entry);
  }
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    return this.down ? Promise.reject(new Error('ECONNRESET')) : this.inner.lock(key, ttlMs);
  }
  watch(key: string, onChange: () => void): () => void {
    return this.inner.watch(key, onChange);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await flush();
}

describe('review 11: a write that timed out but landed', () => {
  let fleet: Harness[] = [];
  useFakeClock(() => fleet[0]);
  afterEach(() => {
    for (const member of fleet) member.lifecycle.close();
    fleet = [];
  });

  it('never lets a refresh token that reached the store be sent twice', async () => {
    const shared = new InProcessTokenStore();
    const viewA = new View(shared);
    const viewB = new View(shared);
    const a = harness({ store: viewA, retry: FAST_RETRY });
    const b = harness({ store: viewB, retry: FAST_RETRY });
    fleet = [a, b];
    await a.lifecycle.start();
    await b.lifecycle.start();
    expect(b.stub.count).toBe(0); // b adopted a's token

    // a renews; its write of the new token (and refresh token; the spent entry before it is quick) is slow: a gives up after 2 s, it lands at 2.5 s.
    viewA.writeDelayMs = 2_500;
    const renewed = outcome(a.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(3_000);
    await settle();
    expect(renewed.settled()).toBe(true);
    viewA.writeDelayMs = 0;
    const stored = (await shared.read('token'))!;
    expect(stored.accessToken).toBe(renewed.value()); // it landed, refresh token and all
    expect(await b.lifecycle.getAccessToken()).toBe(renewed.value()); // b adopted it, refresh token and all

    // a's connection to the store breaks; b's does not. Both renew.
    viewA.down = true;
    await a.lifecycle.forceRefresh();
    await b.lifecycle.forceRefresh();

    const sent = [...a.stub.calls, ...b.stub.calls].filter((c) => c.kind === 'refresh').map((c) => c.refreshToken);
    // Expected: every refresh token sent once. Actual: the one in the store is sent by a (alone) and by b.
    expect(sent.length).toBeGreaterThan(1);
    expect(sent.filter((token, i) => sent.indexOf(token) !== i)).toEqual([]);
  });
});
