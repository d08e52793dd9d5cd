import { inspect } from 'node:util';
import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { StoreAccess } from '../../lib/token-lifecycle/store-access';
import { deriveStoreScope } from '../../lib/token-store/store-key';

/**
 * Finding: the context handed to every store call, `{ encryptionKey }`, is a plain object holding a
 * Buffer: `util.inspect` (any logger, a `console.log(context)` in a custom store while debugging) prints
 * the derived key's bytes, `JSON.stringify` prints all 32 of them. The entries handed to the same store
 * hide their tokens from both (non-enumerable fields); the key that decrypts them does not. The same
 * for StoreAccess, whose `scope` promise prints its resolved value.
 */

function forms(key: Uint8Array): string[] {
  const bytes = [...key];
  return [
    bytes
      .slice(0, 8)
      .map((b) => b.toString(16).padStart(2, '0'))
      .join(' '), // inspect of a Buffer: `<Buffer 3f a1 ...>`
    bytes.slice(0, 8).join(','), // JSON of a Buffer: `{"type":"Buffer","data":[63,161,...]}`
  ];
}

describe('review 11: the derived encryption key', () => {
  it('is not printed by inspect or JSON of the context a store receives', async () => {
    const { context } = await deriveStoreScope('https://api.example', 'agent-1', 'agent-secret-xyz');
    const printed = [inspect(context), inspect(context, { depth: 5 }), JSON.stringify(context)].join('\n');
    for (const form of forms(context.encryptionKey)) expect(printed).not.toContain(form);
  });

  it('is not printed by inspect of StoreAccess', async () => {
    const scope = deriveStoreScope('https://api.example', 'agent-1', 'agent-secret-xyz');
    const access = new StoreAccess(new InProcessTokenStore(), scope, () => undefined);
    try {
      const { context } = await scope;
      const printed = inspect(access, { depth: 5 });
      for (const form of forms(context.encryptionKey)) expect(printed).not.toContain(form);
    } finally {
      access.close();
    }
  });
});
