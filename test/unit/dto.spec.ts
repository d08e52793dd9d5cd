import { instanceToPlain, plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { inspect } from 'node:util';
import { AgentAuthRequestDto, AgentTokenResponseDto, RefreshTokenRequestDto } from 'nestjs-freedompay-transfer-auth';

const SECRET = 'the-agent-secret-99';
const ACCESS = 'at-0123456789-visible-nowhere';
const REFRESH = 'rt-0123456789-visible-nowhere';

/** Every way a DTO is commonly printed, logged or copied: none may show a secret. */
function everyPrinting(value: object): string {
  return [
    JSON.stringify(value),
    JSON.stringify({ nested: { value } }),
    inspect(value),
    inspect(value, { showHidden: true, depth: 10 }),
    inspect({ nested: { value } }, { depth: 10 }),
    `${inspect([value])}`,
    JSON.stringify({ ...value }),
    inspect({ ...value }, { showHidden: true }),
    JSON.stringify(Object.keys(value).map((key) => (value as Record<string, unknown>)[key])),
    JSON.stringify(instanceToPlain(value)),
  ].join('\n');
}

function tokenAnswer(): AgentTokenResponseDto {
  // As the client builds it: plainToInstance over the four fields.
  return plainToInstance(AgentTokenResponseDto, {
    access_token: ACCESS,
    refresh_token: REFRESH,
    access_expire_at: '2024-10-02T10:52:21.000000Z',
    refresh_expire_at: '2024-10-03T10:52:21.000000Z',
  });
}

describe('DTOs never show a secret or token (finding 8)', () => {
  describe('AgentAuthRequestDto', () => {
    it('JSON.stringify and inspect show the secret as [redacted], the agent id as is', () => {
      const dto = AgentAuthRequestDto.of('agent-7', SECRET);
      expect(JSON.parse(JSON.stringify(dto))).toEqual({ agent_id: 'agent-7', agent_secret: '[redacted]' });
      expect(inspect(dto)).toBe("AgentAuthRequestDto { agent_id: 'agent-7', agent_secret: '[redacted]' }");
      expect(everyPrinting(dto)).not.toContain(SECRET);
    });

    it('toBody() is the wire body, exactly { agent_id, agent_secret }; the field stays readable', () => {
      const dto = AgentAuthRequestDto.of('agent-7', SECRET);
      expect(JSON.parse(dto.toBody())).toEqual({ agent_id: 'agent-7', agent_secret: SECRET });
      expect(Object.keys(JSON.parse(dto.toBody()))).toEqual(['agent_id', 'agent_secret']);
      expect(dto.agent_secret).toBe(SECRET);
    });

    it('validates with class-validator: the secret field is checked although hidden', () => {
      expect(validateSync(AgentAuthRequestDto.of('agent-7', SECRET))).toEqual([]);
      const problems = validateSync(AgentAuthRequestDto.of('agent-7', ''));
      expect(problems.map((p) => p.property)).toEqual(['agent_secret']);
    });

    it('an instance built without of() (plainToInstance) is hidden too', () => {
      const dto = plainToInstance(AgentAuthRequestDto, { agent_id: 'agent-7', agent_secret: SECRET });
      expect(dto).toBeInstanceOf(AgentAuthRequestDto);
      expect(dto.agent_secret).toBe(SECRET);
      expect(everyPrinting(dto)).not.toContain(SECRET);
      expect(JSON.parse(dto.toBody())).toEqual({ agent_id: 'agent-7', agent_secret: SECRET });
    });
  });

  describe('RefreshTokenRequestDto', () => {
    it('JSON.stringify and inspect show [redacted]; toBody() is { refresh_token }', () => {
      const dto = RefreshTokenRequestDto.of(REFRESH);
      expect(JSON.parse(JSON.stringify(dto))).toEqual({ refresh_token: '[redacted]' });
      expect(inspect(dto)).toBe("RefreshTokenRequestDto { refresh_token: '[redacted]' }");
      expect(everyPrinting(dto)).not.toContain(REFRESH);
      expect(JSON.parse(dto.toBody())).toEqual({ refresh_token: REFRESH });
      expect(dto.refresh_token).toBe(REFRESH);
      expect(validateSync(dto)).toEqual([]);
    });
  });

  describe('AgentTokenResponseDto', () => {
    it('JSON.stringify and inspect show both tokens as [redacted] and the expiry times as is', () => {
      const dto = tokenAnswer();
      expect(JSON.parse(JSON.stringify(dto))).toEqual({
        access_token: '[redacted]',
        refresh_token: '[redacted]',
        access_expire_at: '2024-10-02T10:52:21.000000Z',
        refresh_expire_at: '2024-10-03T10:52:21.000000Z',
      });
      expect(inspect(dto)).toMatch(/^AgentTokenResponseDto \{/);
      const printed = everyPrinting(dto);
      expect(printed).not.toContain(ACCESS);
      expect(printed).not.toContain(REFRESH);
      expect(printed).toContain('2024-10-02T10:52:21.000000Z');
    });

    it('keeps the tokens readable and validates as the client validates it', () => {
      const dto = tokenAnswer();
      expect(dto.access_token).toBe(ACCESS);
      expect(dto.refresh_token).toBe(REFRESH);
      const options = { forbidUnknownValues: true, validationError: { target: false, value: false } };
      expect(validateSync(dto, options)).toEqual([]);
      const broken = plainToInstance(AgentTokenResponseDto, { ...JSON.parse(JSON.stringify(dto)), access_token: '' });
      expect(validateSync(broken, options).map((p) => p.property)).toEqual(['access_token']);
      const missing = plainToInstance(AgentTokenResponseDto, { access_expire_at: 'x' });
      expect(
        validateSync(missing, options)
          .map((p) => p.property)
          .sort(),
      ).toEqual(['access_expire_at', 'access_token', 'refresh_expire_at', 'refresh_token']);
    });

    it('an unset token prints as absent, not as [redacted]', () => {
      expect(JSON.stringify(new AgentTokenResponseDto())).toBe('{}');
    });
  });
});
