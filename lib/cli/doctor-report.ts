import type { RefreshHttpMethod, RefreshTokenLocation } from '../interfaces/transfer-auth-module-options.interface';

/** The `refresh` option the doctor found to work, as the module takes it. */
export interface DoctorRefreshOption {
  readonly method: RefreshHttpMethod;
  readonly path: string;
  readonly tokenIn: RefreshTokenLocation;
}

/**
 * One route tried with a made-up refresh token: 404 or 405, no such route (`exists: false`); 3xx, or
 * 408/429/5xx (which stop the run), unknown (`null`); any other status, the route exists.
 */
export interface DoctorRouteProbe {
  readonly method: RefreshHttpMethod;
  readonly path: string;
  /** The HTTP status, or `null` when no answer came. */
  readonly status: number | null;
  readonly exists: boolean | null;
}

/** What `doctor --json` prints: exactly this object. `null` wherever the doctor could not tell. */
export interface DoctorReport {
  baseUrl: string;
  login: {
    ok: boolean;
    status: number | null;
    /** The `TransferAuthError` code when the login failed. */
    code?: string;
    latencyMs: number | null;
    accessTtlSeconds: number | null;
    refreshTtlSeconds: number | null;
    /** The upstream's `Date` minus the local clock (whole seconds; positive: the upstream is ahead). */
    clockSkewSeconds: number | null;
    /**
     * Answer fields beyond the four documented ones, by name only: the names safe to print (short,
     * lowercase, holding no credential or token of the run).
     */
    extraFields: string[] | null;
    /** How many more fields there are whose names are not printed (they could hold a secret or a token). */
    unnamedExtraFields: number | null;
  };
  refresh: {
    supported: boolean | null;
    method: RefreshHttpMethod | null;
    path: string | null;
    /** Where the token must go: `header` or `body` when one alone works, `both` when only both work. */
    tokenIn: RefreshTokenLocation | null;
    /** A refresh token that served a refresh is refused the second time. */
    singleUse: boolean | null;
    /** After a refresh token was reused, the newest one no longer works (the whole family is revoked). */
    familyRevokedOnReuse: boolean | null;
    /** Which placements of a real refresh token the route accepted. */
    accepts: { header: boolean | null; body: boolean | null; both: boolean | null };
    probes: DoctorRouteProbe[];
  };
  recommended: { refresh: false | DoctorRefreshOption | null };
  /**
   * Why the run stopped before it was done, or `null`: `BUDGET` (25 requests), or the error code of what
   * stopped it (`UPSTREAM_UNAVAILABLE`: no answer, the run's deadline, or an answer 408/429/5xx), with
   * the status and the Retry-After it came with.
   */
  stopped: { code: string; status: number | null; retryAfterSeconds: number | null } | null;
  /** Every HTTP request the doctor sent. */
  calls: number;
}

/** A report with nothing known yet. */
export function emptyReport(baseUrl: string): DoctorReport {
  return {
    baseUrl,
    login: {
      ok: false,
      status: null,
      latencyMs: null,
      accessTtlSeconds: null,
      refreshTtlSeconds: null,
      clockSkewSeconds: null,
      extraFields: null,
      unnamedExtraFields: null,
    },
    refresh: {
      supported: null,
      method: null,
      path: null,
      tokenIn: null,
      singleUse: null,
      familyRevokedOnReuse: null,
      accepts: { header: null, body: null, both: null },
      probes: [],
    },
    recommended: { refresh: null },
    stopped: null,
    calls: 0,
  };
}

/** The `refresh` option as a line of TypeScript for the module's options. */
export function refreshOptionSource(refresh: false | DoctorRefreshOption): string {
  if (refresh === false) return 'refresh: false';
  return `refresh: { method: '${refresh.method}', path: '${refresh.path}', tokenIn: '${refresh.tokenIn}' }`;
}
