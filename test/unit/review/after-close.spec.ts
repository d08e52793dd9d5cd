import type { TransferTokenStoreLock } from '../../../lib/token-store/transfer-token-store.interface';
import { MAX_TIMER_DELAY_MS } from '../../../lib/internal.constants';
import { flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { useFakeClock } from '../lifecycle/support';
import { ProxyStore } from '../support/test-stores';

class HeldLock extends ProxyStore {
  override lock(): Promise<TransferTokenStoreLock | undefined> {
    return Promise.resolve(undefined);
  }
}
class HangingLock extends ProxyStore {
  override lock(): Promise<TransferTokenStoreLock | undefined> {
    return new Promise(() => undefined);
  }
}

describe('regression (0.2 review): close() does not stop everything at once', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('a renewal waiting for another holder makes no store call after close()', async () => {
    const store = new HeldLock();
    h = harness({ store });
    h.lifecycle.getAccessToken().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(10); // napping in awaitHolder
    const reads = store.reads;
    h.lifecycle.close();
    await flush();
    // Current: the nap's abort handler calls done() (which resolves) before reject(): the nap *resolves*, and
    // the loop reads the store once more after close (and could adopt, or go on to renewUpstream).
    expect(store.reads).toBe(reads);
  });

  it("a getAccessToken() after close() arms no ref'd 24.8-day keeper timer", async () => {
    const setTimeoutSpy = jest.spyOn(global, 'setTimeout');
    h = harness({ store: new HangingLock() });
    h.lifecycle.getAccessToken().catch(() => undefined); // renewal stuck in store.lock (2 s timeout)
    await flush();
    h.lifecycle.close();
    setTimeoutSpy.mockClear();
    const late = outcome(h.lifecycle.getAccessToken());
    await Promise.resolve();
    await Promise.resolve();
    expect(late.settled()).toBe(true); // SHUTDOWN, fine
    // Current: acquire() still sees the closed lifecycle's flight and join()s it: a new ref'd keeper,
    // cleared only when the abandoned renewal lands (here: after the 2 s store timeout).
    const keepers = setTimeoutSpy.mock.calls.filter(([, ms]) => ms === MAX_TIMER_DELAY_MS);
    setTimeoutSpy.mockRestore();
    expect(keepers).toHaveLength(0);
  });
});
