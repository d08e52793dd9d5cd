import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { TransferApiClient } from '../../lib/upstream/transfer-api.client';
import type { UpstreamTokenResponse } from '../../lib/upstream/token-endpoint';

/**
 * Finding: every read of the secret provider is `Promise.race([read, this.closing])`, and `closing` is
 * a promise that stays pending for the life of the client. A race leaves a reaction on each promise it
 * races; on a pending promise that reaction stays until it settles, and it holds the race's own promise
 * (resolved with the secret read). So each provider read keeps about half a kilobyte, and the secret it
 * answered, until shutdown: a login every few minutes is harmless, but refused callers ask the provider
 * once a second during a credentials outage (the rotation check), two more per rejected login, which
 * is tens of MB a day, and every secret ever read (the rotated-out ones included) stays on the heap.
 * The race should not outlive the read (e.g. an abort listener removed when the read settles).
 */

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapBytes(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const READS = 50_000;

describe('review 12: what each read of the secret provider leaves behind', () => {
  it('nothing that outlives the read: heap after 50,000 logins (each reads the provider once) back near where it was', async () => {
    const options = resolveTransferAuthOptions({
      agentId: 'agent-1',
      agentSecret: () => 'the-secret',
      fetchOnStartup: false,
    });
    const client = new TransferApiClient(options);
    // The login itself fails at once (no HTTP): only the read of the secret is under test.
    (client as unknown as { login: () => Promise<UpstreamTokenResponse> }).login = () =>
      Promise.reject(new TransferAuthError('UPSTREAM_UNAVAILABLE', 'the upstream is down'));
    try {
      await client.getToken().catch(() => undefined); // warm up
      const before = heapBytes();
      for (let i = 0; i < READS; i++) await client.getToken().catch(() => undefined);
      const perRead = (heapBytes() - before) / READS;
      // Now about 460 bytes per read (23 MB for 50,000), all of it freed by close().
      expect(perRead).toBeLessThan(50);
    } finally {
      client.close();
    }
  });
});
