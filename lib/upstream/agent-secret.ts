import { createHash } from 'node:crypto';
import { types } from 'node:util';
import { TransferAuthError } from '../errors/transfer-auth.error';
import { shutdownError } from './upstream-answer';
import { promiseTimeout, PromiseTimeoutError } from '../utils/promise-timeout';

/**
 * Reads the agent secret, before every Get token: from an environment variable or `ConfigService`, a
 * file a secret manager keeps current (a Kubernetes secret volume), or a secret manager itself. Its
 * answer is used for one login and never cached, so a rotated secret is picked up by the next login.
 */
export type AgentSecretProvider = () => string | Promise<string>;

/**
 * @internal The secret for one login: `source` itself, or what the provider answers within `timeoutMs`.
 * A provider that throws, rejects, hangs or answers anything but a non-empty string fails with
 * `SECRET_UNAVAILABLE`, naming the failure and never a value (not even the provider's message, which
 * could quote one). Once `shutdown` is aborted the provider is not called, and a read under way settles
 * at once with `SHUTDOWN`; nothing of a read outlives it (no listener is left on `shutdown`).
 */
export async function readAgentSecret(
  source: string | AgentSecretProvider,
  timeoutMs: number,
  shutdown: AbortSignal,
): Promise<string> {
  if (typeof source === 'string') return source;
  if (shutdown.aborted) throw shutdownError('Get token');
  let onAbort: (() => void) | undefined;
  let answer: unknown;
  try {
    const cancelled = new Promise<never>((_, reject) => {
      onAbort = () => reject(shutdownError('Get token'));
      shutdown.addEventListener('abort', onAbort, { once: true });
    });
    answer = await Promise.race([promiseTimeout(timeoutMs, Promise.resolve().then(source), true), cancelled]);
  } catch (error) {
    // Only our own shutdown: a provider that throws a TransferAuthError of its own is a failed provider.
    if (shutdown.aborted) throw shutdownError('Get token');
    if (error instanceof PromiseTimeoutError) {
      throw new TransferAuthError(
        'SECRET_UNAVAILABLE',
        `The agentSecret provider did not answer within ${timeoutMs} ms.`,
      );
    }
    throw new TransferAuthError('SECRET_UNAVAILABLE', `The agentSecret provider failed (${describe(error)}).`);
  } finally {
    if (onAbort !== undefined) shutdown.removeEventListener('abort', onAbort);
  }
  if (typeof answer !== 'string') {
    const what = answer === null ? 'null' : typeof answer;
    throw new TransferAuthError('SECRET_UNAVAILABLE', `The agentSecret provider answered ${what}, not a string.`);
  }
  if (answer.trim() === '') {
    throw new TransferAuthError('SECRET_UNAVAILABLE', 'The agentSecret provider answered an empty string.');
  }
  return answer;
}

/** The error's class and code (`Error ENOENT`): never its message, which may quote the secret. */
function describe(error: unknown): string {
  // `isNativeError` too: Node's own errors (fs, net) come from another realm under Jest's VM.
  if (!(error instanceof Error) && !types.isNativeError(error)) {
    const kind = error === null || error === undefined ? String(error) : typeof error;
    return `it threw ${kind === 'object' ? 'an object' : kind === 'null' || kind === 'undefined' ? kind : `a ${kind}`}`;
  }
  const code = (error as { code?: unknown }).code;
  const safeCode = typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,40}$/.test(code) ? ` ${code}` : '';
  const name = /^[A-Za-z][\w$]{0,60}$/.test(error.name) ? error.name : 'Error';
  return `${name}${safeCode}`;
}

/**
 * @internal A secret's tag for the fleet's login cool-down: 8 hex digits of a hash, the same in every
 * process for the same secret. Too short to test guesses of the secret against (2^32 values: a wrong
 * guess matches one in four billion, a list of candidates leaves millions), long enough to tell a
 * rotated secret from the one rejected.
 */
export function secretTag(secret: string): string {
  return createHash('sha256').update(`nestjs-freedompay-transfer-auth/secret-tag\n${secret}`).digest('hex').slice(0, 8);
}

/** @internal The tag of the secret a rejected login was sent with, by its error (kept out of the error itself). */
export const rejectedSecretTags = new WeakMap<object, string>();
