/**
 * @internal The code of a store's error, safe to log and to show in `getStatus().store.error`: a Redis
 * error code (`NOPERM`, `OOM`, `READONLY`, `LOADING`, ...), a Node socket code (`ECONNREFUSED`), or the
 * error's class name. Never its message: a message may quote a key or a value.
 */
export function storeErrorCode(error: unknown): string {
  if (!(error instanceof Error)) return typeof error === 'object' ? 'UNKNOWN' : typeof error;
  const message = typeof error.message === 'string' ? error.message : '';
  // Redis 7 reports an ACL refusal inside a script as `ERR The user executing the script can't ...`.
  if (/^(ERR )?The user executing the script can't|^NOPERM\b/.test(message)) return 'NOPERM';
  const code = /^-?([A-Z][A-Z0-9_]{1,31})(?=\s|$)/.exec(message)?.[1];
  if (code !== undefined && code !== 'ERR') return code;
  const errno = (error as { code?: unknown }).code;
  if (typeof errno === 'string' && /^E[A-Z0-9_]{1,31}$/.test(errno)) return errno;
  return code ?? (/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(error.name) ? error.name : 'Error');
}
