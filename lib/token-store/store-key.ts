import { scrypt } from 'node:crypto';

/** scrypt cost: about 50 ms and 16 MiB once per registration, enough to make guessing a secret from a key slow. */
const SCRYPT = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/**
 * @internal The key of an agent's token in a shared store: the same for every process configured with the
 * same base URL, agent and secret, and different as soon as one differs, so that processes with another
 * (e.g. a wrong, or rotated) secret never share a token. Derived with scrypt, once: the key names no
 * secret and cannot be used to test guesses of one quickly.
 */
export function tokenStoreKey(baseUrl: string, agentId: string, agentSecret: string): Promise<string> {
  const salt = `nestjs-freedompay-transfer-auth/store-key/v1\n${baseUrl}\n${agentId}`;
  return new Promise((resolve, reject) => {
    scrypt(agentSecret, salt, 16, SCRYPT, (error, key) => (error ? reject(error) : resolve(key.toString('hex'))));
  });
}
