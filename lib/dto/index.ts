export { AgentAuthRequestDto, RefreshTokenRequestDto } from './agent-auth-request.dto';
export { AgentTokenResponseDto, parseUpstreamTimestamp } from './agent-token-response.dto';
