import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { FAST_RETRY, useFakeClock } from '../unit/lifecycle/support';
import { flush, harness, type Harness } from '../unit/support/stub-endpoint';

/**
 * Finding: a stored token is adopted only if it goes stale no earlier than the one held
 * (`Renewer.adoptable`: `stored.staleAt >= replacing.staleAt`; the same test in
 * `TokenLifecycle.onStoreChange`). When the replacement of a token refused with a 401 goes stale EARLIER
 * than the refused one (the upstream now issues shorter tokens, a refresh gives a shorter lifetime than a
 * login, a token revoked early), the hint reaches the other processes but they keep the refused token:
 * the 401 does not reach them, each one pays its own 401, and each 401 then makes its own upstream
 * renewal instead of the one the contract promises.
 */

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await flush();
}

describe('review 11: a 401 in one process, a replacement that goes stale earlier', () => {
  let fleet: Harness[] = [];
  useFakeClock(() => fleet[0]);
  afterEach(() => {
    for (const member of fleet) member.lifecycle.close();
    fleet = [];
  });

  it('reaches the other processes: they drop the refused token and adopt its replacement', async () => {
    const store = new InProcessTokenStore();
    fleet = [0, 1, 2].map(() => harness({ store, retry: FAST_RETRY }));
    const [a, b, c] = fleet as [Harness, Harness, Harness];
    a.stub.defaults = { lifetimeMs: 3_600_000 }; // the first token lives an hour ...
    for (const member of fleet) await member.lifecycle.start();
    const refused = await a.lifecycle.getAccessToken();
    expect(await b.lifecycle.getAccessToken()).toBe(refused);

    a.stub.defaults = { lifetimeMs: 600_000 }; // ... its replacement ten minutes
    a.lifecycle.invalidate(refused); // the upstream answered 401
    await settle();
    const replacement = await a.lifecycle.getAccessToken();
    expect(replacement).not.toBe(refused);

    // Expected: every process serves the replacement, one upstream renewal in all.
    // Actual: b and c keep serving the refused token.
    expect(await b.lifecycle.getAccessToken()).toBe(replacement);
    expect(await c.lifecycle.getAccessToken()).toBe(replacement);
  });

  it('one upstream renewal follows, fleet-wide, when each process sees the 401 itself', async () => {
    const store = new InProcessTokenStore();
    fleet = [0, 1, 2].map(() => harness({ store, retry: FAST_RETRY }));
    const [a] = fleet as [Harness];
    a.stub.defaults = { lifetimeMs: 3_600_000 };
    for (const member of fleet) await member.lifecycle.start();
    const refused = await a.lifecycle.getAccessToken();
    for (const member of fleet) member.stub.defaults = { lifetimeMs: 600_000 };

    for (const member of fleet) {
      member.lifecycle.invalidate(refused);
      await settle();
    }
    const upstream = fleet.flatMap((m) => m.stub.kinds()).slice(1); // after the first login
    // Expected: ['refresh']. Actual: one renewal per process.
    expect(upstream).toEqual(['refresh']);
  });
});
