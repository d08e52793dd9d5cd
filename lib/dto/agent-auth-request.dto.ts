import { IsNotEmpty, IsString } from 'class-validator';
import { redactSecrets } from '../utils/redact-secrets';

/** Body of Get token: `POST /v5/partner/transfer/agent/auth`. Exactly these two fields. */
export class AgentAuthRequestDto {
  /** Unique partner identifier, provided by support. */
  @IsString()
  @IsNotEmpty()
  agent_id!: string;

  /** Partner's secret key, provided by support. Hidden from `inspect`; sent only in the request body. */
  @IsString()
  @IsNotEmpty()
  agent_secret!: string;

  /** Builds the body; the secret stays out of `inspect` output (JSON keeps it: it is the wire format). */
  static of(agentId: string, agentSecret: string): AgentAuthRequestDto {
    const dto = new AgentAuthRequestDto();
    dto.agent_id = agentId;
    dto.agent_secret = agentSecret;
    return hideFromInspect(dto, 'agent_secret');
  }
}

/** Body of the (assumed) Refresh token call, when the refresh token goes in the body. */
export class RefreshTokenRequestDto {
  /** The refresh token of the current pair. Hidden from `inspect`. */
  @IsString()
  @IsNotEmpty()
  refresh_token!: string;

  static of(refreshToken: string): RefreshTokenRequestDto {
    const dto = new RefreshTokenRequestDto();
    dto.refresh_token = refreshToken;
    return hideFromInspect(dto, 'refresh_token');
  }
}

/** The wire body must keep the secret, so only `inspect` is taught to hide it. */
function hideFromInspect<T extends object>(dto: T, key: keyof T & string): T {
  const wire = { ...dto };
  redactSecrets(dto, [key]);
  Object.defineProperty(dto, 'toJSON', { value: () => wire, enumerable: false });
  return dto;
}
