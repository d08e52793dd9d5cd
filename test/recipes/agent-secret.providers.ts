// agent-secret.providers.ts
import type { ConfigService } from '@nestjs/config';
import { readFile } from 'node:fs/promises';
import type { AgentSecretProvider } from 'nestjs-freedompay-transfer-auth';

/** From the environment, through ConfigService: read again before every login. */
export function secretFromConfig(config: ConfigService): AgentSecretProvider {
  return () => config.getOrThrow<string>('FREEDOMPAY_AGENT_SECRET');
}

/** From a file a secret manager keeps current (a Kubernetes secret volume): read again on each call. */
export function secretFromFile(path: string): AgentSecretProvider {
  return async () => (await readFile(path, 'utf8')).trim();
}

/** What `secretFromHttp` throws: its name and code say what failed, never the secret or the token. */
export class SecretEndpointError extends Error {
  override readonly name = 'SecretEndpointError';
  constructor(readonly code: 'TIMEOUT' | 'UNREACHABLE' | 'BAD_ANSWER' | `HTTP_${number}`) {
    super(`The secret endpoint failed: ${code}`);
  }
}

export interface HttpSecretOptions {
  url: string;
  headers?: Record<string, string>;
  /** Where the secret is in the JSON answer. */
  pick: (body: unknown) => unknown;
  /** Keep it below the module's `requestTimeoutMs`, so that callers see this error. @default 2000 */
  timeoutMs?: number;
  /** An answer is used again for at most this long (0: never). @default 1000 */
  maxAgeMs?: number;
}

/** From a secret manager's HTTP API: one GET at a time, bounded, its answer reused for a short while. */
export function secretFromHttp(options: HttpSecretOptions): AgentSecretProvider {
  const { url, headers = {}, pick, timeoutMs = 2_000, maxAgeMs = 1_000 } = options;
  let cached: { value: string; until: number } | undefined;
  let inFlight: Promise<string> | undefined;

  const fetchSecret = async (): Promise<string> => {
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new SecretEndpointError((error as Error).name === 'TimeoutError' ? 'TIMEOUT' : 'UNREACHABLE');
    }
    if (!response.ok) throw new SecretEndpointError(`HTTP_${response.status}`);
    const value = pick(await response.json().catch(() => undefined));
    if (typeof value !== 'string' || value.trim() === '') throw new SecretEndpointError('BAD_ANSWER');
    return value;
  };

  return async () => {
    if (cached !== undefined && Date.now() < cached.until) return cached.value;
    inFlight ??= fetchSecret().finally(() => (inFlight = undefined));
    const value = await inFlight;
    cached = { value, until: Date.now() + maxAgeMs };
    return value;
  };
}

/** HashiCorp Vault, KV version 2: the field `agent_secret` of the secret at `path`. */
export function secretFromVault(
  vaultAddr: string,
  vaultToken: string,
  path: string,
  options: Partial<HttpSecretOptions> = {},
): AgentSecretProvider {
  return secretFromHttp({
    url: `${vaultAddr}/v1/secret/data/${path}`,
    headers: { 'X-Vault-Token': vaultToken },
    pick: (body) => (body as { data?: { data?: Record<string, unknown> } } | undefined)?.data?.data?.['agent_secret'],
    ...options,
  });
}

/** AWS Secrets Manager through the AWS Parameters and Secrets extension: the secret's `SecretString`. */
export function secretFromAwsExtension(
  secretId: string,
  endpoint = 'http://localhost:2773',
  options: Partial<HttpSecretOptions> = {},
): AgentSecretProvider {
  return secretFromHttp({
    url: `${endpoint}/secretsmanager/get?secretId=${encodeURIComponent(secretId)}`,
    headers: { 'X-Aws-Parameters-Secrets-Token': process.env.AWS_SESSION_TOKEN ?? '' },
    pick: (body) => (body as { SecretString?: unknown } | undefined)?.SecretString,
    ...options,
  });
}
