import { outcome } from '../unit/support/stub-endpoint';
import { ProxyStore } from '../unit/support/test-stores';
import { clientRig, fakeClockPerTest, refused } from './support';

/**
 * Finding: `readAgentSecret` calls the provider even when the client is already closed; only its answer
 * is cut short (raced with `closing`). A renewal that is past the point where close() could stop it
 * (here: in a shared store's read, which `close()` does not cancel) goes on to Get token after the
 * shutdown, and Get token asks the provider first: a Vault / Secrets Manager request (or a file read)
 * made by a module that has shut down, possibly on a client the app already closed. The contract:
 * "On shutdown ... nothing calls the upstream again"; the secret manager is the other party a login
 * talks to. The provider should not be called once the client is closed.
 */

class SlowStoreWithKey extends ProxyStore {
  readonly ownEncryptionKey = true;
}

describe('review 12: the secret provider after shutdown', () => {
  const closeAfterTest = fakeClockPerTest();

  it('is not asked for the secret by a renewal that was in a store call at close()', async () => {
    let reads = 0;
    const store = new SlowStoreWithKey();
    store.delayMs = 300; // slow, well within the store's 2 s timeout
    const rig = clientRig(
      {
        agentSecret: () => {
          reads++;
          return 'the-secret';
        },
      },
      refused,
      store,
    );
    closeAfterTest(rig.lifecycle);
    const caller = outcome(rig.lifecycle.getAccessToken());
    await jest.advanceTimersByTimeAsync(100); // the renewal reads the store
    rig.lifecycle.close();
    await jest.advanceTimersByTimeAsync(0);
    expect((caller.error() as { code: string }).code).toBe('SHUTDOWN');
    await jest.advanceTimersByTimeAsync(5_000);
    expect(rig.logins).toEqual([]); // the upstream is not called (control: this holds now)
    expect(reads).toBe(0); // ...and neither is the secret manager
  });
});
