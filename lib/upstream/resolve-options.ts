import { TransferAuthError } from '../errors/transfer-auth.error';
import { invalidOptionMessage } from '../transfer-auth.messages';
import { redactSecrets } from '../utils/redact-secrets';
import type {
  RefreshHttpMethod,
  RefreshTokenLocation,
  TransferAuthModuleOptions,
  TransferHttpDefaults,
  TransferHttpReservedDefaults,
} from '../interfaces/transfer-auth-module-options.interface';
import {
  DEFAULT_AUTH_PATH,
  DEFAULT_BASE_URL,
  DEFAULT_HTTP_TIMEOUT_MS,
  DEFAULT_REFRESH_METHOD,
  DEFAULT_REFRESH_TOKEN_IN,
  REFRESH_METHODS,
  REFRESH_TOKEN_LOCATIONS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY,
} from '../transfer-auth.constants';
import { MAX_TIMER_DELAY_MS } from '../internal.constants';
import type { TransferTokenStore } from '../token-store/transfer-token-store.interface';
import type { AgentSecretProvider } from './agent-secret';

/** @internal Options after validation, with every default filled in. */
export interface ResolvedTransferAuthOptions {
  readonly agentId: string;
  /** The secret, or the provider read before every Get token. */
  readonly agentSecret: string | AgentSecretProvider;
  /** Origin and optional path prefix, without a trailing slash. */
  readonly baseUrl: string;
  readonly authPath: string;
  readonly refresh:
    { readonly path: string; readonly method: RefreshHttpMethod; readonly tokenIn: RefreshTokenLocation } | false;
  readonly refreshMarginMs: number | undefined;
  readonly requestTimeoutMs: number;
  readonly retry: { readonly maxAttempts: number; readonly baseDelayMs: number; readonly maxDelayMs: number };
  readonly fetchOnStartup: boolean;
  /** Undefined: a fresh in-process store. */
  readonly store: TransferTokenStore | undefined;
  /** `false`: no metrics or spans even with an OpenTelemetry SDK registered. */
  readonly telemetry: { readonly agentIdAttribute: boolean } | false;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** Thrown by the checks below; turned into `INVALID_CONFIG` naming the registration. */
class InvalidOption extends Error {
  constructor(
    readonly option: string,
    readonly why: string,
  ) {
    super(why);
  }
}

function invalid(option: string, why: string): InvalidOption {
  return new InvalidOption(option, why);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requiredString(value: unknown, option: string, expected = 'expected a string'): string {
  if (typeof value !== 'string') throw invalid(option, value === undefined ? 'it is required' : expected);
  if (value.trim() === '') throw invalid(option, 'it must not be empty');
  return value;
}

function positive(value: unknown, option: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(option, 'expected a positive finite number');
  }
  if (integer && !Number.isInteger(value)) throw invalid(option, 'expected a positive whole number');
  return value;
}

/** A positive number a single setTimeout can take (past 2^31-1 ms it would fire after 1 ms). */
function timerDelay(value: unknown, option: string, fallback: number): number {
  const ms = positive(value, option, fallback);
  if (ms > MAX_TIMER_DELAY_MS) throw invalid(option, `must not exceed ${MAX_TIMER_DELAY_MS} (about 24.8 days)`);
  return ms;
}

function path(value: unknown, option: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || /[\s?#]/.test(value)) {
    throw invalid(option, 'expected a path starting with "/", without query or fragment');
  }
  return value;
}

function baseUrl(value: unknown): string {
  if (value === undefined) return DEFAULT_BASE_URL;
  if (typeof value !== 'string' || value.trim() === '') throw invalid('baseUrl', 'expected a non-empty URL string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('baseUrl', 'not a valid absolute URL');
  }
  if (url.username || url.password) throw invalid('baseUrl', 'credentials in the URL are not allowed');
  if (url.search || url.hash) throw invalid('baseUrl', 'query and fragment are not allowed');
  if (url.protocol === 'http:') {
    if (!LOOPBACK.test(url.hostname))
      throw invalid('baseUrl', '`http:` is allowed only for loopback hosts; use `https:`');
  } else if (url.protocol !== 'https:') {
    // The scheme is part of the value (a pasted secret like `abc:def` parses as scheme `abc:`): not echoed.
    throw invalid('baseUrl', 'unsupported scheme; use `https:`');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function oneOf<T extends string>(value: unknown, option: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const normalised = typeof value === 'string' ? value.toUpperCase() : value;
  const match = allowed.find((a) => a === value || a === normalised);
  if (match === undefined) throw invalid(option, `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  return match;
}

/**
 * @internal Validates the user's options and fills in the defaults. Throws `INVALID_CONFIG` naming the
 * first bad option (never its value). The result hides the secret from `inspect` and `JSON.stringify`.
 */
export function resolveTransferAuthOptions(options: unknown, name?: string): ResolvedTransferAuthOptions {
  try {
    const resolved = resolve(options);
    resolveTransferHttpOptions(options, name); // its options fail the init too, by name
    return resolved;
  } catch (error) {
    if (!(error instanceof InvalidOption)) throw error;
    throw new TransferAuthError('INVALID_CONFIG', invalidOptionMessage(error.option, error.why, name));
  }
}

function resolve(options: unknown): ResolvedTransferAuthOptions {
  if (!isRecord(options)) throw invalid('options', 'expected an object');
  const o = options as Partial<Record<keyof TransferAuthModuleOptions, unknown>>;
  const agentId = requiredString(o.agentId, 'agentId');
  const agentSecret =
    typeof o.agentSecret === 'function'
      ? (o.agentSecret as AgentSecretProvider)
      : requiredString(o.agentSecret, 'agentSecret', 'expected a string or a function that returns one');
  const authPath = path(o.authPath, 'authPath', DEFAULT_AUTH_PATH);

  let refresh: ResolvedTransferAuthOptions['refresh'];
  if (o.refresh === false) refresh = false;
  else if (o.refresh === undefined || isRecord(o.refresh)) {
    const r = o.refresh ?? {};
    refresh = {
      path: path(r.path, 'refresh.path', authPath),
      method: oneOf(r.method, 'refresh.method', REFRESH_METHODS, DEFAULT_REFRESH_METHOD),
      tokenIn: oneOf(r.tokenIn, 'refresh.tokenIn', REFRESH_TOKEN_LOCATIONS, DEFAULT_REFRESH_TOKEN_IN),
    };
  } else throw invalid('refresh', 'expected an object or false');

  if (o.retry !== undefined && !isRecord(o.retry)) throw invalid('retry', 'expected an object');
  const r = (o.retry ?? {}) as Record<string, unknown>;
  // Each field is checked alone and merged with the defaults. `maxDelayMs` is a cap that holds whatever
  // else is given: a `baseDelayMs` above it (given or default) is lowered to it, never the other way.
  const maxDelayMs = timerDelay(r.maxDelayMs, 'retry.maxDelayMs', DEFAULT_RETRY.maxDelayMs);
  const retry = {
    maxAttempts: positive(r.maxAttempts, 'retry.maxAttempts', DEFAULT_RETRY.maxAttempts, true),
    baseDelayMs: Math.min(maxDelayMs, timerDelay(r.baseDelayMs, 'retry.baseDelayMs', DEFAULT_RETRY.baseDelayMs)),
    maxDelayMs,
  };

  if (o.fetchOnStartup !== undefined && typeof o.fetchOnStartup !== 'boolean') {
    throw invalid('fetchOnStartup', 'expected a boolean');
  }

  const store = o.store;
  if (
    store !== undefined &&
    (!isRecord(store) ||
      !['read', 'write', 'lock'].every((m) => typeof (store as Record<string, unknown>)[m] === 'function'))
  ) {
    throw invalid('store', 'expected a TransferTokenStore (an object with read, write and lock methods)');
  }

  if (
    typeof agentSecret === 'function' &&
    store !== undefined &&
    (store as unknown as TransferTokenStore).ownEncryptionKey !== true
  ) {
    // The key that encrypts a shared entry derives from the secret: one that rotates would change it.
    throw invalid(
      'store',
      'with `agentSecret` as a provider, a shared store needs an encryption key of its own (`new RedisTokenStore({ client, encryptionKey })`)',
    );
  }

  let telemetry: ResolvedTransferAuthOptions['telemetry'];
  if (o.telemetry === false) telemetry = false;
  else if (o.telemetry === undefined || isRecord(o.telemetry)) {
    const agentIdAttribute = o.telemetry?.agentIdAttribute ?? false;
    if (typeof agentIdAttribute !== 'boolean') throw invalid('telemetry.agentIdAttribute', 'expected a boolean');
    telemetry = Object.freeze({ agentIdAttribute });
  } else throw invalid('telemetry', 'expected an object or false');

  const resolved: ResolvedTransferAuthOptions = {
    agentId,
    agentSecret,
    baseUrl: baseUrl(o.baseUrl),
    authPath,
    refresh,
    refreshMarginMs: o.refreshMarginMs === undefined ? undefined : positive(o.refreshMarginMs, 'refreshMarginMs', 0),
    requestTimeoutMs: timerDelay(o.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS),
    retry: Object.freeze(retry),
    fetchOnStartup: o.fetchOnStartup ?? true,
    store: store as TransferTokenStore | undefined,
    telemetry,
  };
  return Object.freeze(redactSecrets(resolved, ['agentSecret']));
}

/** @internal The options of `TransferHttpService`, validated, with the defaults filled in. */
export interface ResolvedTransferHttpOptions {
  readonly httpTimeoutMs: number;
  /** A copy of what was given (`{}` by default); hidden from `inspect` and JSON, it may hold credentials. */
  readonly httpDefaults: Readonly<TransferHttpDefaults>;
}

/**
 * Why each key `TransferHttpService` keeps to itself is refused in `httpDefaults` (`proxy: false` is
 * allowed). The destination check runs at the adapter, so these are what could get around it or bend
 * where the request really goes.
 */
const RESERVED_HTTP_DEFAULTS: Readonly<Record<TransferHttpReservedDefaults, string>> = {
  baseURL: 'not allowed: the base URL is `baseUrl`',
  url: 'not allowed: each request names its own URL',
  adapter: 'not allowed: the client sends through its own adapter, where it decides where the token goes',
  maxRedirects: 'not allowed: the client never follows a redirect with the token',
  beforeRedirect: 'not allowed: the client never follows a redirect with the token',
  transport: 'not allowed: it could send the token somewhere other than `baseUrl`',
  socketPath: 'not allowed: it could send the token somewhere other than `baseUrl`',
  proxy: 'only `false` is allowed: a proxy of your own could be sent the token',
  auth: 'not allowed: the client sends its own `Authorization` header',
  timeout: 'not allowed: use `httpTimeoutMs`, a deadline over the whole exchange',
};

/**
 * @internal Validates `httpTimeoutMs` and `httpDefaults`, each alone; throws `INVALID_CONFIG` naming the
 * option (and the reserved key), never a value.
 */
export function resolveTransferHttpOptions(options: unknown, name?: string): ResolvedTransferHttpOptions {
  try {
    if (!isRecord(options)) throw invalid('options', 'expected an object');
    return resolveHttp(options as Partial<Record<keyof TransferAuthModuleOptions, unknown>>);
  } catch (error) {
    if (!(error instanceof InvalidOption)) throw error;
    throw new TransferAuthError('INVALID_CONFIG', invalidOptionMessage(error.option, error.why, name));
  }
}

function resolveHttp(o: Partial<Record<keyof TransferAuthModuleOptions, unknown>>): ResolvedTransferHttpOptions {
  const httpTimeoutMs = timerDelay(o.httpTimeoutMs, 'httpTimeoutMs', DEFAULT_HTTP_TIMEOUT_MS);
  const given = o.httpDefaults;
  if (given !== undefined && !isRecord(given)) throw invalid('httpDefaults', 'expected an object of axios defaults');
  const httpDefaults: Record<string, unknown> = { ...given };
  for (const [key, why] of Object.entries(RESERVED_HTTP_DEFAULTS)) {
    const value = httpDefaults[key];
    if (value !== undefined && !(key === 'proxy' && value === false)) throw invalid(`httpDefaults.${key}`, why);
  }
  const headers = httpDefaults['headers'];
  if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object') throw invalid('httpDefaults.headers', 'expected an object');
    // axios also reads headers per method (`common`, `get`, ...): an Authorization there is refused too.
    const sets = [headers, ...Object.values(headers).filter((v) => typeof v === 'object' && v !== null)];
    if (sets.some((set) => Object.keys(set as object).some((k) => k.toLowerCase() === 'authorization'))) {
      throw invalid('httpDefaults.headers', 'must not set `Authorization`: the client sends its own');
    }
  }
  return redactSecrets({ httpTimeoutMs, httpDefaults: Object.freeze(httpDefaults) as Readonly<TransferHttpDefaults> }, [
    'httpDefaults',
  ]);
}
