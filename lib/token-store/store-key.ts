import { scrypt } from 'node:crypto';
import { inspect } from 'node:util';
import type { TransferTokenStoreContext } from './transfer-token-store.interface';

/** scrypt cost: about 50 ms and 16 MiB once per registration, enough to make guessing a secret from a key slow. */
const SCRYPT = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/** @internal Where an agent's token lives in a shared store, and the key its entries are encrypted with. */
export interface StoreScope {
  /** 32 hex characters: names no secret. */
  readonly key: string;
  readonly context: TransferTokenStoreContext;
}

/**
 * @internal The key of an agent's token in a shared store and the key that encrypts it: the same for
 * every process configured with the same base URL, agent and secret, and different as soon as one
 * differs, so that processes with another (e.g. a wrong, or rotated) secret never share a token. One
 * scrypt derivation, once: the name holds no secret and cannot be used to test guesses of one quickly;
 * the encryption key is the other 32 bytes of the same output.
 */
export function deriveStoreScope(
  baseUrl: string,
  agentId: string,
  agentSecret: string | undefined,
): Promise<StoreScope> {
  // A secret provider (`undefined` here): the name is the agent's alone, the same across a rotation, and
  // the store encrypts with a key of its own (checked with the options), never with this one.
  const version = agentSecret === undefined ? 'v1-provider' : 'v1';
  const salt = `nestjs-freedompay-transfer-auth/store-key/${version}\n${baseUrl}\n${agentId}`;
  return new Promise((resolve, reject) => {
    scrypt(agentSecret ?? '', salt, 48, SCRYPT, (error, derived) => {
      if (error) return reject(error);
      resolve({ key: derived.subarray(0, 16).toString('hex'), context: storeContext(derived.subarray(16)) });
    });
  });
}

/** @internal A context whose key never prints: not enumerable, `[redacted]` under `inspect` and `JSON`. */
export function storeContext(encryptionKey: Uint8Array): TransferTokenStoreContext {
  const context = {
    toJSON: () => ({ encryptionKey: '[redacted]' }),
    [inspect.custom]: () => "{ encryptionKey: '[redacted]' }",
  };
  Object.defineProperty(context, 'encryptionKey', { value: encryptionKey, enumerable: false });
  return context as typeof context & TransferTokenStoreContext;
}
