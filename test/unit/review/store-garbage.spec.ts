import type { StoredTransferToken } from '../../../lib/token-store/transfer-token-store.interface';
import { drive, harness, type Harness } from '../support/stub-endpoint';
import { useFakeClock } from '../lifecycle/support';
import { ProxyStore } from '../support/test-stores';

/** Redis GET answers `null` for a missing key; a store that passes it through is "garbage", not fatal. */
class NullReadStore extends ProxyStore {
  override read(key: string): Promise<StoredTransferToken | undefined> {
    return super.read(key).then((entry) => entry ?? (null as unknown as undefined));
  }
}

describe('regression (0.2 review): a store read answering null fails every renewal', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('callers never fail because of the store: null is "no entry"', async () => {
    h = harness({ store: new NullReadStore() });
    const got = await drive(h.lifecycle.getAccessToken()).catch((error: unknown) => error);
    // Current code: TypeError in Renewer.adoptable (`null.version`) -> UPSTREAM_UNAVAILABLE "Unexpected failure
    // while renewing the token (TypeError)", no upstream call at all; the same on every later renewal, forever.
    expect(got).toEqual(expect.stringMatching(/^ACCESS-/));
    expect(h.stub.count).toBe(1);
  });
});
