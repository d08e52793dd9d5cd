import { IsNotEmpty, IsString } from 'class-validator';
import { inspect, type InspectOptionsStylized } from 'node:util';
import { hideFields, inspectRedacted, redactedView } from './redacted-fields';

const AUTH_FIELDS = ['agent_id', 'agent_secret'] as const;
const AUTH_SECRETS = ['agent_secret'] as const;

/**
 * Body of Get token: `POST /v5/partner/transfer/agent/auth`. Exactly these two fields.
 *
 * `JSON.stringify` and `util.inspect` show `agent_secret` as `[redacted]`, and spreads or
 * `Object.keys` do not list it: the one way to write the real body is {@link toBody}.
 */
export class AgentAuthRequestDto {
  /** Unique partner identifier, provided by support. */
  @IsString()
  @IsNotEmpty()
  agent_id!: string;

  /** Partner's secret key, provided by support. Readable, but never printed; sent only by {@link toBody}. */
  @IsString()
  @IsNotEmpty()
  agent_secret!: string;

  constructor() {
    hideFields(this, AUTH_SECRETS);
  }

  /** Builds the body of Get token. */
  static of(agentId: string, agentSecret: string): AgentAuthRequestDto {
    const dto = new AgentAuthRequestDto();
    dto.agent_id = agentId;
    dto.agent_secret = agentSecret;
    return dto;
  }

  /** The JSON text sent upstream, `{"agent_id":…,"agent_secret":…}`: the only output that holds the secret. */
  toBody(): string {
    return JSON.stringify({ agent_id: this.agent_id, agent_secret: this.agent_secret });
  }

  /** What `JSON.stringify` shows: the secret as `[redacted]` (the wire body is {@link toBody}). */
  toJSON(): Record<string, unknown> {
    return redactedView(this, AUTH_FIELDS, AUTH_SECRETS);
  }

  /** @internal */
  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return inspectRedacted('AgentAuthRequestDto', this.toJSON(), options);
  }
}

const REFRESH_FIELDS = ['refresh_token'] as const;

/**
 * Body of the (assumed) Refresh token call, when the refresh token goes in the body. `JSON.stringify`
 * and `util.inspect` show the token as `[redacted]`: the one way to write the real body is {@link toBody}.
 */
export class RefreshTokenRequestDto {
  /** The refresh token of the current pair. Readable, but never printed; sent only by {@link toBody}. */
  @IsString()
  @IsNotEmpty()
  refresh_token!: string;

  constructor() {
    hideFields(this, REFRESH_FIELDS);
  }

  /** Builds the body of the Refresh token call. */
  static of(refreshToken: string): RefreshTokenRequestDto {
    const dto = new RefreshTokenRequestDto();
    dto.refresh_token = refreshToken;
    return dto;
  }

  /** The JSON text sent upstream, `{"refresh_token":…}`: the only output that holds the token. */
  toBody(): string {
    return JSON.stringify({ refresh_token: this.refresh_token });
  }

  /** What `JSON.stringify` shows: the token as `[redacted]` (the wire body is {@link toBody}). */
  toJSON(): Record<string, unknown> {
    return redactedView(this, REFRESH_FIELDS, REFRESH_FIELDS);
  }

  /** @internal */
  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return inspectRedacted('RefreshTokenRequestDto', this.toJSON(), options);
  }
}
