import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';
import { inspect, type InspectOptionsStylized } from 'node:util';
import { hideFields, inspectRedacted, redactedView } from './redacted-fields';

/**
 * `YYYY-MM-DDTHH:mm:ss[.fraction](Z|±hh:mm)`, as the upstream sends it: `2024-10-02T10:52:21.000000Z`.
 * The zone is required: a time without one would be a guess, and a wrong guess hands out expired tokens.
 */
export const UPSTREAM_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/i;

const TOKEN_FIELDS = ['access_token', 'refresh_token', 'access_expire_at', 'refresh_expire_at'] as const;
const TOKEN_SECRETS = ['access_token', 'refresh_token'] as const;

/**
 * Answer of Get token (and of the assumed Refresh token): a token pair with its expiry times.
 * `JSON.stringify` and `util.inspect` show both tokens as `[redacted]`, and spreads or `Object.keys` do
 * not list them; the expiry times are shown.
 */
export class AgentTokenResponseDto {
  /** Short-lived token, sent as `Authorization: Bearer <access_token>` on every Transfer call. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(8192)
  access_token!: string;

  /** Long-lived token, used to obtain a new pair without the agent secret. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(8192)
  refresh_token!: string;

  /** Access token expiry, ISO-8601 UTC with microseconds, e.g. `2024-10-02T10:52:21.000000Z`. */
  @IsString()
  @Matches(UPSTREAM_TIMESTAMP)
  access_expire_at!: string;

  /** Refresh token expiry, same format. */
  @IsString()
  @Matches(UPSTREAM_TIMESTAMP)
  refresh_expire_at!: string;

  constructor() {
    // In the constructor, so that instances made by class-transformer's plainToInstance are covered too.
    hideFields(this, TOKEN_SECRETS);
  }

  /** What `JSON.stringify` shows: the expiry times, and the tokens as `[redacted]`. */
  toJSON(): Record<string, unknown> {
    return redactedView(this, TOKEN_FIELDS, TOKEN_SECRETS);
  }

  /** @internal */
  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return inspectRedacted('AgentTokenResponseDto', this.toJSON(), options);
  }
}

/**
 * Parses an upstream timestamp to epoch milliseconds (microseconds and beyond are truncated).
 * Returns `undefined` for anything that is not a real calendar time.
 */
export function parseUpstreamTimestamp(value: string): number | undefined {
  const m = UPSTREAM_TIMESTAMP.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] ?? '';
  const zone = m[8] as string;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    const hours = Number(digits.slice(1, 3));
    const minutes = Number(digits.slice(3, 5));
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (digits.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  const ms = Number(fraction.padEnd(3, '0').slice(0, 3));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime() - offsetMinutes * 60_000;
}
