import type {
  TransferAuthLastError,
  TransferAuthState,
  TransferAuthStatus,
} from '../interfaces/transfer-auth-status.interface';
import { isBefore, type CachedToken } from './cached-token';
import type { Instant } from './clock';

/** @internal A snapshot of the lifecycle, with its own Date objects: mutating one moves no deadline. */
export function statusOf(
  token: CachedToken | undefined,
  now: Instant,
  { closed, renewing, lastError }: { closed: boolean; renewing: boolean; lastError: TransferAuthLastError | undefined },
): TransferAuthStatus {
  let state: TransferAuthState;
  if (closed) state = 'closed';
  else if (token !== undefined && isBefore(token.usableUntil, now))
    state = isBefore(token.staleAt, now) ? 'valid' : 'stale';
  else if (renewing) state = 'acquiring';
  else state = lastError === undefined ? 'idle' : 'failed';
  const status: TransferAuthStatus = {
    state,
    accessExpiresAt: copy(token?.accessExpiresAt),
    refreshExpiresAt: copy(token?.refreshExpiresAt),
    lastRefreshAt: copy(token?.obtainedAt),
    accessTokenFingerprint: token?.fingerprint ?? null,
  };
  if (lastError !== undefined) status.lastError = { ...lastError, at: new Date(lastError.at) };
  return status;
}

function copy(date: Date | undefined): Date | null {
  return date === undefined ? null : new Date(date);
}
