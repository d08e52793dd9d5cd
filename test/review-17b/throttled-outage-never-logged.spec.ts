import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { RedisDisconnectedError } from '../../lib/redis/redis-client';
import { LOCAL_SCOPE, StoreAccess } from '../../lib/token-lifecycle/store-access';
import type { StoredTransferToken } from '../../lib/token-store/transfer-token-store.interface';
import { T0 } from '../unit/lifecycle/support';

/**
 * Review 17b, finding (medium): an outage that starts within 60 s of an earlier one with the same code is
 * never logged, however long it lasts and whatever codes it goes through - and its recovery is not logged
 * either. docs/fleet.md: the degradation is "logged once per outage with the code and what to do".
 *
 * `failed()` now returns early for every failure while the state is already degraded ("the same outage,
 * said already"), but whether it WAS said depends on the per-code 60 s throttle applied only at the
 * ok -> degraded edge. Sequence: a 2 s stall (TIMEOUT, logged) that recovers (logged); 30 s later the
 * store stalls again (TIMEOUT: throttled, not logged, no recovery owed) and then the client loses its
 * connection for 10 minutes (DISCONNECTED on every call). Before this change the new code was logged;
 * now nothing is logged for the 10-minute outage: an operator reading logs sees a 2 s blip that recovered.
 *
 * Fix: remember whether the current outage has been logged; while degraded and not logged yet, log it
 * at the first failure whose code is not throttled (a new code, or the 60 s past), and owe its recovery.
 */
describe('review 17b: an outage that starts inside the log throttle of an earlier one', () => {
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  it('is logged at least once while it lasts', async () => {
    let mode: 'ok' | 'hang' | 'disconnected' = 'ok';
    const inner = new InProcessTokenStore();
    const store = {
      read: (key: string): Promise<StoredTransferToken | undefined> =>
        mode === 'ok'
          ? inner.read(key)
          : mode === 'hang'
            ? new Promise<never>(() => undefined)
            : Promise.reject(new RedisDisconnectedError()),
      write: (key: string, entry: StoredTransferToken) => inner.write(key, entry),
      lock: (key: string, ttlMs: number) => inner.lock(key, ttlMs),
    };
    const logs: { level: string; message: string; at: number }[] = [];
    const access = new StoreAccess(store, Promise.resolve(LOCAL_SCOPE), (level, message) =>
      logs.push({ level, message, at: Date.now() }),
    );
    const read = async (): Promise<void> => {
      const pending = access.read();
      await jest.advanceTimersByTimeAsync(2_100); // past the store's 2 s bound
      await pending;
    };

    mode = 'hang'; // a 2 s blip
    await read();
    mode = 'ok';
    await read();
    expect(access.status().state).toBe('ok');
    const blipLines = logs.length; // "failed (TIMEOUT on read)" and "answers again"
    expect(blipLines).toBe(2);

    await jest.advanceTimersByTimeAsync(30_000);
    mode = 'hang'; // the next outage starts with the same code, inside the 60 s throttle
    await read();
    mode = 'disconnected'; // ... and goes on for 10 minutes
    for (let i = 0; i < 60; i++) {
      await read();
      await jest.advanceTimersByTimeAsync(8_000);
    }
    expect(access.status()).toMatchObject({ state: 'degraded', error: 'DISCONNECTED' });
    const outageLines = logs.slice(blipLines).filter((l) => /token store failed/.test(l.message));
    expect(outageLines.length).toBeGreaterThanOrEqual(1);
    access.close();
  });
});
