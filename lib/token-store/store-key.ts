import { createHash } from 'node:crypto';

/**
 * @internal The key of an agent's token in a store: the same for every process configured with the
 * same base URL and agent, and no secret in it (a hash of non-secret values).
 */
export function tokenStoreKey(baseUrl: string, agentId: string): string {
  return createHash('sha256').update(`${baseUrl}\n${agentId}`).digest('hex').slice(0, 32);
}
