import { parseUpstreamTimestamp } from '../dto/agent-token-response.dto';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { UpstreamTokenResponse } from '../upstream/token-endpoint';
import {
  MAX_DEFAULT_REFRESH_MARGIN_MS,
  REFRESH_MARGIN_RATIO,
  SAFETY_WINDOW_MAX_MS,
  SAFETY_WINDOW_RATIO,
  UPSTREAM_CLOCK_RESOLUTION_MS,
} from '../internal.constants';
import type { StoredTransferToken } from '../token-store/transfer-token-store.interface';
import type { Instant } from './clock';
import { tokenFingerprint } from '../telemetry/fingerprint';

/** @internal A deadline on both clocks; it has passed as soon as either clock says so. */
export interface Deadline {
  readonly mono: number;
  readonly wall: number;
}

/** @internal An access token with the local deadlines that govern it. */
export interface CachedToken {
  readonly accessToken: string;
  /** Its name in logs, events and status: the first 8 hex digits of its SHA-256. */
  readonly fingerprint: string;
  /** Resolved once, handed to every cached caller: the cheapest thing an `await` can take. */
  readonly promise: Promise<string>;
  /** From here on the token is renewed in the background. */
  readonly staleAt: Deadline;
  /** From here on the token is never handed out. */
  readonly usableUntil: Deadline;
  readonly accessExpiresAt: Date;
  readonly refreshExpiresAt: Date;
  readonly obtainedAt: Date;
}

/** @internal The refresh token, kept apart: it outlives the access token it came with. */
export interface RefreshCredential {
  readonly refreshToken: string;
  readonly usableUntil: Deadline;
}

/** @internal */
export function isBefore(deadline: Deadline, now: Instant): boolean {
  return now.mono < deadline.mono && now.wall < deadline.wall;
}

/** @internal min(5 s, 10% of the lifetime). */
export function safetyWindowMs(lifetimeMs: number): number {
  return Math.min(SAFETY_WINDOW_MAX_MS, lifetimeMs * SAFETY_WINDOW_RATIO);
}

/**
 * @internal Places the upstream's expiry times on the local clocks. With a `Date` header the local
 * wall clock plays no part: the time left is `expire_at - Date - 1 s` (the header is truncated to the
 * second), counted from when the request was sent, which is before the upstream wrote `Date`. So a
 * skewed local clock or a slow round trip can only make the deadline earlier than the real one.
 */
export function toCachedToken(
  response: UpstreamTokenResponse,
  refreshMarginMs: number | undefined,
): { token: CachedToken; refresh: RefreshCredential | undefined } {
  const { body, serverDateMs, sentAt, receivedAt } = response;
  const accessExpiresMs = parseUpstreamTimestamp(body.access_expire_at);
  const refreshExpiresMs = parseUpstreamTimestamp(body.refresh_expire_at);
  if (accessExpiresMs === undefined || refreshExpiresMs === undefined) {
    const field = accessExpiresMs === undefined ? 'access_expire_at' : 'refresh_expire_at';
    throw new TransferAuthError('INVALID_RESPONSE', `The upstream sent an unparsable ${field}.`);
  }
  const serverNowMs = serverDateMs === undefined ? sentAt.wall : serverDateMs + UPSTREAM_CLOCK_RESOLUTION_MS;
  const lifetimeMs = accessExpiresMs - (serverDateMs ?? sentAt.wall);
  const leftMs = accessExpiresMs - serverNowMs;
  const safetyMs = safetyWindowMs(lifetimeMs);
  const usableUntil = after(sentAt, leftMs - safetyMs);
  if (!(lifetimeMs > 0) || !isBefore(usableUntil, receivedAt)) {
    throw new TransferAuthError(
      'INVALID_RESPONSE',
      `The upstream sent an access token that had expired on arrival (access_expire_at ${body.access_expire_at}, upstream clock ${printable(serverNowMs)}).`,
    );
  }
  const wantedMarginMs = refreshMarginMs ?? Math.min(MAX_DEFAULT_REFRESH_MARGIN_MS, lifetimeMs * REFRESH_MARGIN_RATIO);
  const marginMs = Math.min(Math.max(wantedMarginMs, safetyMs), lifetimeMs / 2);
  let staleAt = after(sentAt, leftMs - marginMs);
  // A token already stale on arrival would be renewed at once, and its successor too: a loop. Wait at
  // least half of what is usable instead.
  if (!isBefore(staleAt, receivedAt)) {
    staleAt = after(receivedAt, (usableUntil.mono - receivedAt.mono) / 2);
  }
  // Never after the usable end on either clock (a wall-clock step during the request can do that).
  staleAt = { mono: Math.min(staleAt.mono, usableUntil.mono), wall: Math.min(staleAt.wall, usableUntil.wall) };

  const refreshLeftMs = refreshExpiresMs - serverNowMs;
  const refreshUsableUntil = after(
    sentAt,
    refreshLeftMs - safetyWindowMs(refreshExpiresMs - (serverDateMs ?? sentAt.wall)),
  );
  const refresh = isBefore(refreshUsableUntil, receivedAt)
    ? { refreshToken: body.refresh_token, usableUntil: refreshUsableUntil }
    : undefined;

  const token: CachedToken = {
    accessToken: body.access_token,
    fingerprint: tokenFingerprint(body.access_token),
    promise: Promise.resolve(body.access_token),
    staleAt,
    usableUntil,
    accessExpiresAt: new Date(accessExpiresMs),
    refreshExpiresAt: new Date(refreshExpiresMs),
    obtainedAt: new Date(receivedAt.wall),
  };
  return { token: hideToken(token), refresh: refresh && hideToken(refresh) };
}

/** @internal The store's form of a token: wall-clock deadlines, tokens out of sight of `inspect`. */
export function toStored(
  token: CachedToken,
  refresh: RefreshCredential | undefined,
  version: number,
): StoredTransferToken {
  return hideToken({
    version,
    accessToken: token.accessToken,
    ...(refresh === undefined
      ? {}
      : { refreshToken: refresh.refreshToken, refreshUsableUntil: refresh.usableUntil.wall }),
    staleAt: token.staleAt.wall,
    usableUntil: token.usableUntil.wall,
    accessExpiresAt: token.accessExpiresAt.getTime(),
    refreshExpiresAt: token.refreshExpiresAt.getTime(),
    obtainedAt: token.obtainedAt.getTime(),
  });
}

/** @internal The stored entry with its refresh token recorded as spent: the next version, nothing else changed. */
export function spentEntry(entry: StoredTransferToken): StoredTransferToken {
  return hideToken({
    version: entry.version + 1,
    accessToken: entry.accessToken,
    staleAt: entry.staleAt,
    usableUntil: entry.usableUntil,
    accessExpiresAt: entry.accessExpiresAt,
    refreshExpiresAt: entry.refreshExpiresAt,
    obtainedAt: entry.obtainedAt,
  });
}

/**
 * @internal The entry after a rejected login: the fleet's cool-down (until, rejections in a row, the
 * rejected secret's tag) on the access token stored before, if any (others may still use it); no refresh
 * token (the login was tried because none was usable).
 */
export function blockedEntry(
  entry: StoredTransferToken | undefined,
  version: number,
  loginBlockedUntil: number,
  rejectedLogins: number,
  rejectedSecret: string,
): StoredTransferToken {
  const kept = entry ?? emptyEntry(version);
  return hideToken({
    version,
    accessToken: kept.accessToken,
    staleAt: kept.staleAt,
    usableUntil: kept.usableUntil,
    accessExpiresAt: kept.accessExpiresAt,
    refreshExpiresAt: kept.refreshExpiresAt,
    obtainedAt: kept.obtainedAt,
    loginBlockedUntil,
    rejectedLogins,
    rejectedSecret,
  });
}

/** @internal An entry that holds nothing usable: no token, every deadline past (read as "nothing at `version`"). */
export function emptyEntry(version: number): StoredTransferToken {
  return {
    version,
    accessToken: '',
    staleAt: 0,
    usableUntil: 0,
    accessExpiresAt: 0,
    refreshExpiresAt: 0,
    obtainedAt: 0,
  };
}

/**
 * @internal A stored token placed on this process' clocks: the access token if it is usable now, the
 * refresh token if it is; `undefined` for an entry that is not well formed (a store is outside our control).
 */
export function fromStored(
  entry: StoredTransferToken,
  now: Instant,
): { token: CachedToken | undefined; refresh: RefreshCredential | undefined } | undefined {
  const { accessToken, refreshToken, staleAt, usableUntil, refreshUsableUntil } = entry;
  const times = [staleAt, usableUntil, entry.accessExpiresAt, entry.refreshExpiresAt, entry.obtainedAt];
  if (typeof accessToken !== 'string' || accessToken === '' || !times.every(Number.isFinite)) return undefined;
  const onClocks = (wall: number): Deadline => ({ mono: now.mono + (wall - now.wall), wall });
  const token: CachedToken = {
    accessToken,
    fingerprint: tokenFingerprint(accessToken),
    promise: Promise.resolve(accessToken),
    staleAt: onClocks(Math.min(staleAt, usableUntil)),
    usableUntil: onClocks(usableUntil),
    accessExpiresAt: new Date(entry.accessExpiresAt),
    refreshExpiresAt: new Date(entry.refreshExpiresAt),
    obtainedAt: new Date(entry.obtainedAt),
  };
  const refresh =
    typeof refreshToken === 'string' && refreshToken !== '' && Number.isFinite(refreshUsableUntil)
      ? { refreshToken, usableUntil: onClocks(refreshUsableUntil as number) }
      : undefined;
  return {
    token: isBefore(token.usableUntil, now) ? hideToken(token) : undefined,
    refresh: refresh && isBefore(refresh.usableUntil, now) ? hideToken(refresh) : undefined,
  };
}

/** A `Date` header at the edge of what `Date` holds, plus the 1 s of resolution, is past it: no RangeError. */
function printable(epochMs: number): string {
  const date = new Date(epochMs);
  return Number.isNaN(date.getTime()) ? `${epochMs} ms since the epoch` : date.toISOString();
}

function after(start: Instant, ms: number): Deadline {
  return { mono: start.mono + ms, wall: start.wall + ms };
}

/** Tokens live in non-enumerable fields, so that printing the structure never shows them. */
function hideToken<T extends object>(value: T): T {
  for (const key of ['accessToken', 'refreshToken', 'promise']) {
    if (key in value) Object.defineProperty(value, key, { enumerable: false });
  }
  return Object.freeze(value);
}
