import { createHash } from 'node:crypto';

/**
 * A token's name in logs, events, status and errors: the first 8 hex digits of its SHA-256. Enough to
 * tell tokens apart and to match a 401 with the token that caused it; 32 bits of a hash of a random
 * token tell nothing of the token itself.
 */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 8);
}
