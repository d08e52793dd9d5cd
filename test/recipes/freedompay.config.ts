// freedompay.config.ts
import { registerAs, type ConfigType } from '@nestjs/config';

export const freedompayConfig = registerAs('freedompay', () => ({
  agentId: process.env.FREEDOMPAY_AGENT_ID ?? '',
  agentSecret: process.env.FREEDOMPAY_AGENT_SECRET ?? '',
  baseUrl: process.env.FREEDOMPAY_BASE_URL || undefined, // unset: https://api.freedompay.kz
}));
export type FreedomPayConfig = ConfigType<typeof freedompayConfig>;
