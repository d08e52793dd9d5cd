import { MAX_RETRY_AFTER_MS } from '../../lib/internal.constants';
import { parseUpstreamTimestamp } from '../../lib/dto/agent-token-response.dto';
import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import { backoffDelay, parseRetryAfter } from '../../lib/token-lifecycle/backoff';
import { toCachedToken } from '../../lib/token-lifecycle/cached-token';
import { makeTokenResponse } from './support/stub-endpoint';

describe('parseUpstreamTimestamp', () => {
  it.each([
    ['2024-10-02T10:52:21.000000Z', Date.UTC(2024, 9, 2, 10, 52, 21)],
    ['2024-10-25T10:52:21.000000Z', Date.UTC(2024, 9, 25, 10, 52, 21)],
    // Microseconds and beyond are truncated to the millisecond, never rounded up.
    ['2024-10-02T10:52:21.123456Z', Date.UTC(2024, 9, 2, 10, 52, 21, 123)],
    ['2024-10-02T10:52:21.999999999Z', Date.UTC(2024, 9, 2, 10, 52, 21, 999)],
    ['2024-10-02T10:52:21.5Z', Date.UTC(2024, 9, 2, 10, 52, 21, 500)],
    ['2024-10-02T10:52:21.05Z', Date.UTC(2024, 9, 2, 10, 52, 21, 50)],
    ['2024-10-02T10:52:21Z', Date.UTC(2024, 9, 2, 10, 52, 21)],
    // Offsets.
    ['2024-10-02T15:52:21.000000+05:00', Date.UTC(2024, 9, 2, 10, 52, 21)],
    ['2024-10-02T15:52:21+0500', Date.UTC(2024, 9, 2, 10, 52, 21)],
    ['2024-10-02T07:22:21.000000-03:30', Date.UTC(2024, 9, 2, 10, 52, 21)],
    ['2024-10-02T10:52:21-00:00', Date.UTC(2024, 9, 2, 10, 52, 21)],
    ['2024-01-01T02:00:00+05:00', Date.UTC(2023, 11, 31, 21, 0, 0)],
    // Lower case and the SQL-style space separator.
    ['2024-10-02t10:52:21.000000z', Date.UTC(2024, 9, 2, 10, 52, 21)],
    ['2024-10-02 10:52:21.000000Z', Date.UTC(2024, 9, 2, 10, 52, 21)],
    // Calendar edges.
    ['2024-02-29T00:00:00.000000Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T23:59:59.999999Z', Date.UTC(2000, 1, 29, 23, 59, 59, 999)],
    ['2023-12-31T23:59:59Z', Date.UTC(2023, 11, 31, 23, 59, 59)],
    ['9999-12-31T23:59:59.999999Z', Date.UTC(9999, 11, 31, 23, 59, 59, 999)],
    ['0099-12-31T00:00:00Z', new Date(0).setUTCFullYear(99, 11, 31)],
  ])('%s', (text, expected) => {
    expect(parseUpstreamTimestamp(text)).toBe(expected);
  });

  it.each([
    ['February 30', '2024-02-30T00:00:00.000000Z'],
    ['February 29 of a common year', '2023-02-29T00:00:00.000000Z'],
    ['February 29 of 1900', '1900-02-29T00:00:00Z'],
    ['April 31', '2024-04-31T00:00:00Z'],
    ['month 13', '2024-13-01T00:00:00Z'],
    ['month 0', '2024-00-10T00:00:00Z'],
    ['day 0', '2024-01-00T00:00:00Z'],
    ['hour 24', '2024-01-01T24:00:00Z'],
    ['minute 60', '2024-01-01T10:60:00Z'],
    ['second 60 (leap second)', '2024-12-31T23:59:60Z'],
    ['offset hour 24', '2024-01-01T10:00:00+24:00'],
    ['offset minute 60', '2024-01-01T10:00:00+05:60'],
    ['no zone (a guess would hand out expired tokens)', '2024-10-02T10:52:21.000000'],
    ['a named zone', '2024-10-02T10:52:21 UTC'],
    ['a date only', '2024-10-02'],
    ['a 10-digit fraction', '2024-10-02T10:52:21.0000000000Z'],
    ['an empty fraction', '2024-10-02T10:52:21.Z'],
    ['epoch seconds', '1727866341'],
    ['an RFC 1123 date', 'Wed, 02 Oct 2024 10:52:21 GMT'],
    ['trailing text', '2024-10-02T10:52:21.000000Z trailing'],
    ['leading space', ' 2024-10-02T10:52:21.000000Z'],
    ['a trailing newline', '2024-10-02T10:52:21.000000Z\n'],
    ['a five-digit year', '20240-10-02T10:52:21Z'],
    ['unicode digits', '２０２４-10-02T10:52:21Z'],
    ['empty', ''],
  ])('rejects %s', (_what, text) => {
    expect(parseUpstreamTimestamp(text)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('grows exponentially from baseDelayMs, half fixed and half jitter', () => {
    expect([0, 1, 2, 3].map((step) => backoffDelay(step, 200, 5_000, () => 0))).toEqual([100, 200, 400, 800]);
    expect([0, 1, 2, 3].map((step) => backoffDelay(step, 200, 5_000, () => 1))).toEqual([200, 400, 800, 1_600]);
    expect(backoffDelay(2, 200, 5_000, () => 0.5)).toBe(600);
  });

  it('is capped at maxDelayMs', () => {
    expect(backoffDelay(5, 200, 5_000, () => 1)).toBe(5_000);
    expect(backoffDelay(5, 200, 5_000, () => 0)).toBe(2_500);
  });

  it('stays finite for absurd steps and treats negative steps as the first', () => {
    for (const step of [60, 1_000, 1e9, Number.MAX_SAFE_INTEGER]) {
      expect(backoffDelay(step, 200, 5_000, () => 1)).toBe(5_000);
    }
    expect(backoffDelay(-3, 200, 5_000, () => 1)).toBe(200);
  });

  it('with Math.random stays within [ceiling / 2, ceiling]', () => {
    for (let i = 0; i < 1_000; i++) {
      const step = i % 10;
      const ceiling = Math.min(5_000, 200 * 2 ** step);
      const delay = backoffDelay(step, 200, 5_000);
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });
});

describe('parseRetryAfter', () => {
  const SERVER = Date.parse('2025-01-01T00:00:00Z');
  const LOCAL = SERVER + 3_600_000; // the local clock is an hour ahead: it must not matter

  it.each([
    ['120', 120_000],
    ['0', 0],
    [' 5 ', 5_000],
    ['007', 7_000],
  ])('delay-seconds %j', (value, expected) => {
    expect(parseRetryAfter(value, SERVER, LOCAL)).toBe(expected);
  });

  it.each(['99999999999999999999', '86400'])('caps a long delay (%s s) at MAX_RETRY_AFTER_MS (5 min)', (value) => {
    expect(parseRetryAfter(value, SERVER, LOCAL)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('caps a far HTTP-date too: a bad header cannot silence renewal for days', () => {
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', SERVER, LOCAL)).toBe(MAX_RETRY_AFTER_MS);
  });

  it.each(['2025-01-01T00:00:30Z', 'Wed Jan 01 2025 00:00:30', '1 Jan 2025'])(
    'ignores a date that is not an IMF-fixdate (%s): Date.parse would read it in the local zone',
    (value) => {
      expect(parseRetryAfter(value, SERVER, LOCAL)).toBeUndefined();
    },
  );

  it('an HTTP-date is read against the upstream Date, not the local clock', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', SERVER, LOCAL)).toBe(30_000);
  });

  it('an HTTP-date falls back to the local clock when there is no upstream Date', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 01:00:30 GMT', undefined, LOCAL)).toBe(30_000);
  });

  it('an HTTP-date in the past means no wait', () => {
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', SERVER, LOCAL)).toBe(0);
  });

  it.each([[undefined], [''], ['   '], ['soon'], [42], [['120']], [null]])('ignores %j', (value) => {
    expect(parseRetryAfter(value, SERVER, LOCAL)).toBeUndefined();
  });
});

describe('toCachedToken', () => {
  const WALL = Date.parse('2025-01-01T00:00:00.000Z');
  const at = (ms: number): { mono: number; wall: number } => ({ mono: 50_000 + ms, wall: WALL + ms });

  function cache(args: {
    serverDateMs?: number | undefined;
    dateHeader?: boolean;
    lifetimeMs?: number;
    received?: number;
    margin?: number;
    accessExpireAt?: string;
  }): ReturnType<typeof toCachedToken> {
    const response = makeTokenResponse({
      accessToken: 'at',
      refreshToken: 'rt',
      serverNowMs: WALL,
      lifetimeMs: args.lifetimeMs ?? 600_000,
      refreshLifetimeMs: 86_400_000,
      dateHeader: args.dateHeader ?? true,
      sentAt: at(0),
      receivedAt: at(args.received ?? 0),
      accessExpireAt: args.accessExpireAt,
    });
    const withDate = args.serverDateMs === undefined ? response : { ...response, serverDateMs: args.serverDateMs };
    return toCachedToken(withDate, args.margin);
  }

  it('places expiry on both clocks, 1 s earlier for the Date resolution, less the safety window', () => {
    const { token, refresh } = cache({});
    expect(token.usableUntil).toEqual(at(600_000 - 1_000 - 5_000));
    expect(token.staleAt).toEqual(at(600_000 - 1_000 - 60_000));
    expect(refresh?.usableUntil).toEqual(at(86_400_000 - 1_000 - 5_000));
  });

  it('without a Date header, counts from when the request was sent', () => {
    const { token } = cache({ dateHeader: false });
    expect(token.usableUntil).toEqual(at(600_000 - 5_000));
    expect(token.staleAt).toEqual(at(600_000 - 60_000));
  });

  it('an upstream clock a day ahead or behind changes nothing', () => {
    const ahead = cache({ serverDateMs: WALL + 86_400_000, accessExpireAt: '2025-01-02T00:10:00.000000Z' });
    const behind = cache({ serverDateMs: WALL - 86_400_000, accessExpireAt: '2024-12-31T00:10:00.000000Z' });
    expect(ahead.token.usableUntil).toEqual(at(600_000 - 6_000));
    expect(behind.token.usableUntil).toEqual(at(600_000 - 6_000));
  });

  it.each([
    ['in the past', '2024-12-31T23:59:00.000000Z'],
    ['equal to the Date header', '2025-01-01T00:00:00.000000Z'],
    ['within the Date resolution', '2025-01-01T00:00:00.900000Z'],
  ])('an access token expiring %s is INVALID_RESPONSE', (_what, accessExpireAt) => {
    expect(() => cache({ accessExpireAt })).toThrow(expect.objectContaining({ code: 'INVALID_RESPONSE' }));
  });

  it('an access token that expired during a slow round trip is INVALID_RESPONSE', () => {
    expect(() => cache({ lifetimeMs: 10_000, received: 9_500 })).toThrow(
      expect.objectContaining({ code: 'INVALID_RESPONSE' }),
    );
  });

  it('an impossible date is INVALID_RESPONSE naming the field', () => {
    expect(() => cache({ accessExpireAt: '2025-02-30T00:00:00.000000Z' })).toThrow(/access_expire_at/);
  });

  it.each([
    ['the latest', 8.64e15],
    ['the earliest', -8.64e15],
    ['within a second of the latest', 8.64e15 - 500],
  ])('a Date header at %s time JS can hold is INVALID_RESPONSE, not a RangeError', (_what, serverDateMs) => {
    let caught: unknown;
    try {
      cache({ serverDateMs });
    } catch (error) {
      caught = error;
    }
    if (caught !== undefined) {
      expect(caught).toBeInstanceOf(TransferAuthError);
      expect(caught).toMatchObject({ code: 'INVALID_RESPONSE' });
    }
  });

  it('the margin is clamped between the safety window and half the lifetime', () => {
    expect(cache({ dateHeader: false, margin: 1 }).token.staleAt).toEqual(at(600_000 - 5_000));
    expect(cache({ dateHeader: false, margin: 1e12 }).token.staleAt).toEqual(at(300_000));
    expect(cache({ dateHeader: false, margin: 120_000 }).token.staleAt).toEqual(at(480_000));
  });
});
