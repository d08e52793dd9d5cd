import { inspect } from 'node:util';

/** Why a call to the token provider failed. */
export const TransferAuthErrorCode = Object.freeze({
  /** The module options are invalid (the message names the option, never its value). */
  INVALID_CONFIG: 'INVALID_CONFIG',
  /** Get token answered 401 or 403: wrong `agentId`/`agentSecret`. Never retried at once. */
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  /** The upstream answered something unusable: non-JSON, bad fields or dates, too large, 3xx, other 4xx. */
  INVALID_RESPONSE: 'INVALID_RESPONSE',
  /** Network error, timeout, 408, 429 or 5xx (also while the backoff after one is pending). */
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  /**
   * The `agentSecret` provider threw, rejected, did not answer within `requestTimeoutMs`, or answered
   * something other than a non-empty string. Retried with backoff, like an unavailable upstream.
   */
  SECRET_UNAVAILABLE: 'SECRET_UNAVAILABLE',
  /** The application is shutting down; no further upstream calls are made. */
  SHUTDOWN: 'SHUTDOWN',
} as const);

/** One of the values of {@link TransferAuthErrorCode}. */
export type TransferAuthErrorCode = (typeof TransferAuthErrorCode)[keyof typeof TransferAuthErrorCode];

/** Extra details of a {@link TransferAuthError}. */
export interface TransferAuthErrorOptions {
  /** HTTP status the upstream answered, when there was one. */
  status?: number;
  /** The underlying error, already stripped of anything secret. */
  cause?: unknown;
  /** @internal Milliseconds the upstream asked us to wait (`Retry-After`). */
  retryAfterMs?: number;
  /**
   * @internal How the connection failed before a whole answer came: `refused` (nothing was sent) or
   * `reset` (the request may have reached the upstream). What a renewal may retry at once.
   */
  connection?: 'refused' | 'reset';
}

/**
 * The only error the package throws. `code` says what went wrong; `status` is the upstream's HTTP
 * status, if any; `cause` is the underlying error. None of them ever holds the agent secret or a token.
 */
export class TransferAuthError extends Error {
  declare readonly name: 'TransferAuthError';
  readonly code: TransferAuthErrorCode;
  readonly status?: number;
  /** @internal */
  declare readonly retryAfterMs?: number;
  /** @internal */
  declare readonly connection?: 'refused' | 'reset';

  constructor(code: TransferAuthErrorCode, message: string, options: TransferAuthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) {
      Object.defineProperty(this, 'retryAfterMs', { value: options.retryAfterMs, enumerable: false });
    }
    if (options.connection !== undefined) {
      Object.defineProperty(this, 'connection', { value: options.connection, enumerable: false });
    }
  }

  /** Whether `error` is a TransferAuthError, optionally with the given code. */
  static is(error: unknown, code?: TransferAuthErrorCode): error is TransferAuthError {
    return error instanceof TransferAuthError && (code === undefined || error.code === code);
  }

  toJSON(): { name: string; code: TransferAuthErrorCode; status?: number; message: string } {
    return { name: this.name, code: this.code, status: this.status, message: this.message };
  }

  /** @internal */
  [inspect.custom](): string {
    // The status goes in the first line, next to the code: after the stack it would end the last frame.
    const status = this.status === undefined ? '' : ` (HTTP ${this.status})`;
    const cause = this.cause instanceof Error ? `\n  [cause]: ${this.cause.name}: ${this.cause.message}` : '';
    return `${this.stack ?? `${this.name}: ${this.message}`}${cause}`.replace(
      `${this.name}: `,
      `${this.name} [${this.code}]${status}: `,
    );
  }
}

// On the prototype, so that the stack captured by Error() already names the class.
Object.defineProperty(TransferAuthError.prototype, 'name', { value: 'TransferAuthError', enumerable: false });
