import { registerAs, type ConfigType } from '@nestjs/config';

/**
 * The `freedompay` config namespace, read from the environment. Empty credentials are left for the
 * module to reject at startup (`INVALID_CONFIG`, naming the option, never its value).
 */
export const freedompayConfig = registerAs('freedompay', () => ({
  agentId: process.env.FREEDOMPAY_AGENT_ID ?? '',
  agentSecret: process.env.FREEDOMPAY_AGENT_SECRET ?? '',
  /** Unset: the package default, `https://api.freedompay.kz`. */
  baseUrl: process.env.FREEDOMPAY_BASE_URL || undefined,
  /** A second agent (e.g. for USD payouts), registered as `usd` when its id is set. */
  usd: {
    agentId: process.env.FREEDOMPAY_USD_AGENT_ID ?? '',
    agentSecret: process.env.FREEDOMPAY_USD_AGENT_SECRET ?? '',
  },
}));

export type FreedomPayConfig = ConfigType<typeof freedompayConfig>;

/** Name of the second agent's registration: `@InjectTransferAuth(USD_AGENT)`. */
export const USD_AGENT = 'usd';
