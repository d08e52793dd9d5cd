import { inspect } from 'node:util';
import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { TransferAuthService } from '../../lib/transfer-auth.service';
import { harness } from './support/stub-endpoint';

/** Every way an object gets printed: a logger's JSON, console.log, a debugger with hidden fields. */
function printed(value: unknown): string[] {
  return [JSON.stringify(value), inspect(value), inspect(value, { showHidden: true, depth: 10 })];
}

describe('printing the classes that hold a secret or a token shows neither', () => {
  afterEach(() => jest.useRealTimers());

  it('TransferAuthService made by hand from raw options', () => {
    const service = new TransferAuthService({ agentId: 'agent-7', agentSecret: 's3cr3t-value', fetchOnStartup: false });
    for (const text of printed(service)) {
      expect(text).not.toContain('s3cr3t-value');
      expect(text).toContain('agent-7');
    }
    service.onApplicationShutdown();
  });

  it('the lifecycle and a shared in-process store holding a token', async () => {
    jest.useFakeTimers();
    const store = new InProcessTokenStore();
    const h = harness({ store });
    await h.lifecycle.start();
    h.lifecycle.invalidate(await h.lifecycle.getAccessToken()); // keeps the refused token for the spacing
    await jest.advanceTimersByTimeAsync(0);
    for (const text of [...printed(h.lifecycle), ...printed(store)]) {
      for (const secret of [...h.stub.secrets(), 'agent-secret-xyz']) expect(text).not.toContain(secret);
    }
    h.lifecycle.close();
  });
});
