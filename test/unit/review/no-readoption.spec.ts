import { inspect } from 'node:util';
import { answer, drive, flush, harness, type Harness } from '../support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from '../lifecycle/support';
import type { StoredTransferToken } from '../../../lib/token-store/transfer-token-store.interface';
import { ProxyStore, SerializingStore } from '../support/test-stores';

describe('regression (0.2 review): the "spent" entry re-stores the replaced access token under a newer version', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('a token invalidated by a 401 is never adopted back after a failed renewal', async () => {
    const store = new SerializingStore(); // what a Redis store looks like: plain objects back from read()
    h = harness({ store, retry: FAST_RETRY });
    await drive(h.lifecycle.start());
    const refused = await h.lifecycle.getAccessToken();

    h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503); // the outage starts as the 401 comes in
    h.lifecycle.invalidate(refused); // refresh R1 fails, Get token fails: "spent" entry v2 = {...v1, no refresh}
    await flush();
    h.stub.responder = answer.ok();
    await jest.advanceTimersByTimeAsync(2_000); // the background retry is due

    // Current: the retry replaces version 1, reads its own spent entry (version 2, still holding the refused
    // access token), adopts it as "newer", emits token.acquired and clears the backoff.
    expect(await h.lifecycle.getAccessToken()).not.toBe(refused);
  });

  it('the spent entry handed to store.write is as opaque as any other entry', async () => {
    const store = new SerializingStore();
    const written: unknown[] = [];
    const write = store.write.bind(store);
    store.write = (key, entry) => (written.push(entry), write(key, entry));
    h = harness({ store, retry: FAST_RETRY });
    await drive(h.lifecycle.start());
    h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
    await drive(h.lifecycle.forceRefresh()).catch(() => undefined);
    const spent = written[written.length - 1];
    for (const secret of h.stub.secrets()) {
      expect(JSON.stringify(spent)).not.toContain(secret); // before the fix: the access token, enumerable
      expect(inspect(spent)).not.toContain(secret);
    }
  });

  it('a write that landed but answered after the store timeout (version 0) does not bring the token back', async () => {
    class LateAnswerOnce extends ProxyStore {
      late = true;
      override write(key: string, entry: StoredTransferToken): Promise<boolean> {
        const done = super.write(key, entry); // applied at once
        if (!this.late) return done;
        this.late = false;
        return done.then((ok) => new Promise<boolean>((r) => setTimeout(() => r(ok), 2_500))); // answer lost in a slow network
      }
    }
    h = harness({ store: new LateAnswerOnce(), retry: FAST_RETRY });
    await drive(h.lifecycle.start()); // T1 written as version 1, but this process believes version 0
    const refused = await h.lifecycle.getAccessToken();
    h.lifecycle.invalidate(refused); // replacing 0: any stored version is "newer", T1 included
    // The first renewal holds the lock until its (background) write answers or times out (2 s).
    await jest.advanceTimersByTimeAsync(3_000);
    // Current: the renewal adopts version 1 = the token just refused; no upstream call is made.
    expect(await h.lifecycle.getAccessToken()).not.toBe(refused);
  });
});
