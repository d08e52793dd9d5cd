import type { INestApplicationContext, LoggerService } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FleetModule } from './fleet.module';
import { REDIS_CLIENT } from './redis.module';
import { SecretFleetModule, tokenStoreKey } from './secret-fleet.module';
import { useFleetRecipeEnv } from '../support/fleet-recipe-env';

/**
 * The fleet recipes of docs/fleet.md, against the machine's shared Redis (127.0.0.1:6379, REDIS_URL to
 * change it): redis.module.ts (one ioredis client as a provider, quit at shutdown) with fleet.module.ts
 * (the store built in forRootAsync's factory), and secret-fleet.module.ts (a secret file and an
 * `encryptionKey`), through a rolling change of that key. Each test has a key prefix of its own and
 * deletes its keys; nothing is flushed.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every line Nest and the module log, by level. */
class Lines implements LoggerService {
  readonly lines: { level: string; text: string }[] = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', text: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', text: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', text: String(message) });
  }
  at(...levels: string[]): string[] {
    return this.lines.filter((line) => levels.includes(line.level)).map((line) => line.text);
  }
}

const env = useFleetRecipeEnv('recipe-test', { accessTtlMs: 3_000 });

/** The token entries under this test's prefix (a renewal's lock comes and goes beside them). */
async function entries(): Promise<string[]> {
  return (await env.keys()).filter((key) => key.endsWith(':token'));
}

async function start(
  module: typeof FleetModule | typeof SecretFleetModule,
  logger: LoggerService,
): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(module, { logger });
  env.apps.push(app);
  return app;
}

/** Open sockets of this process to Redis' port. */
function redisSockets(): number {
  const port = Number(new URL(REDIS_URL).port || 6379);
  const active = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return active.filter((handle) => (handle as { remotePort?: unknown }).remotePort === port).length;
}

describe('the Redis client as a provider (redis.module.ts, fleet.module.ts)', () => {
  it('two apps share one token; close() quits the client after the module has stopped; nothing logged, nothing left', async () => {
    const before = redisSockets();
    expect(before).toBe(1); // the test's own client
    const logs = new Lines();
    const [a, b] = [await start(FleetModule, logs), await start(FleetModule, logs)];
    const tokens = await Promise.all([a, b].map((app) => app.get(TransferAuthService).getAccessToken()));
    expect(tokens[1]).toBe(tokens[0]);
    expect(env.fake.isAccessTokenValid(tokens[0] as string)).toBe(true);
    expect(env.fake.calls).toMatchObject({ auth: 1, refresh: 0 }); // b adopted a's token from Redis
    expect(await env.keys()).toEqual([expect.stringMatching(/^recipe-test-.*\{[0-9a-f]{32}\}:token$/)]);

    // When the client is quit, the token module of its app must already be closed.
    const statesAtQuit: string[] = [];
    for (const app of [a, b]) {
      const client = app.get<Redis>(REDIS_CLIENT);
      const auth = app.get(TransferAuthService);
      const quit = client.quit.bind(client);
      client.quit = ((...args: Parameters<Redis['quit']>) => {
        statesAtQuit.push(auth.getStatus().state);
        return quit(...args);
      }) as Redis['quit'];
    }
    await Promise.all(env.apps.splice(0).map((app) => app.close()));

    expect(statesAtQuit).toEqual(['closed', 'closed']);
    // quit() answers with Redis' OK; the socket closes just after (the test's timeout: it must).
    for (const client of [a, b].map((app) => app.get<Redis>(REDIS_CLIENT))) {
      if (client.status !== 'end') await once(client, 'end');
    }
    expect(logs.at('error', 'warn')).toEqual([]);
    // The clients and the stores' pub/sub connections are gone: the test's own is the only one left.
    expect(redisSockets()).toBe(before);
  });

  it('a missing REDIS_URL fails the start, naming the variable', async () => {
    delete process.env.REDIS_URL;
    await expect(
      NestFactory.createApplicationContext(FleetModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(/REDIS_URL/);
  });
});

describe('an encryption key of its own (secret-fleet.module.ts), and rotating it', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'secret-fleet-'));
    const file = join(dir, 'agent-secret');
    writeFileSync(file, `${env.fake.agentSecret}\n`);
    process.env.FREEDOMPAY_AGENT_SECRET_FILE = file;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const newKey = (): string => randomBytes(32).toString('base64');

  it('tokenStoreKey takes 32 bytes in base64, and refuses anything else without printing it', () => {
    const key = randomBytes(32);
    process.env.TOKEN_STORE_KEY = key.toString('base64');
    expect(tokenStoreKey(new ConfigService()).equals(key)).toBe(true);
    for (const wrong of [randomBytes(16).toString('base64'), randomBytes(32).toString('hex')]) {
      process.env.TOKEN_STORE_KEY = wrong;
      expect(() => tokenStoreKey(new ConfigService())).toThrow(
        new Error('TOKEN_STORE_KEY must be 32 bytes in base64 (openssl rand -base64 32)'),
      );
    }
  });

  /**
   * A rolling deploy that changes TOKEN_STORE_KEY: two replicas on the old key (A1, A2), then B1 on the new
   * key, A1 stopped, B2 started, A2 stopped, each phase a few token lifetimes long (3 s tokens, renewed
   * about 2 s after issue), callers asking every 50 ms in every replica. Figures in docs/fleet.md.
   */
  it('a rolling change of the key: two groups, each with its own entry, side by side; no fight, no reuse, no error', async () => {
    const logs = new Lines();
    const oldKey = newKey();
    const newKeyValue = newKey();
    const running = new Map<string, INestApplicationContext>();
    const callerErrors: string[] = [];
    const boot = async (name: string, key: string): Promise<void> => {
      process.env.TOKEN_STORE_KEY = key;
      running.set(name, await start(SecretFleetModule, logs));
    };
    const stop = async (name: string): Promise<void> => {
      const replica = running.get(name);
      running.delete(name);
      await replica?.close();
    };
    // Callers in every running replica; every token they get is checked against the env.fake.
    let served = 0;
    let invalid = 0;
    const callers = setInterval(() => {
      for (const [, replica] of running) {
        replica
          .get(TransferAuthService)
          .getAccessToken()
          .then(
            (token) => {
              served++;
              if (!env.fake.isAccessTokenValid(token)) invalid++;
            },
            (error: unknown) => callerErrors.push(String((error as { code?: string }).code ?? error)),
          );
      }
    }, 50);
    const phase = async (ms: number): Promise<{ logins: number; refreshes: number }> => {
      const [auth, refresh] = [env.fake.calls.auth, env.fake.calls.refresh];
      await new Promise((resolve) => setTimeout(resolve, ms)); // real time: Redis keeps deadlines on its own clock
      return { logins: env.fake.calls.auth - auth, refreshes: env.fake.calls.refresh - refresh };
    };

    try {
      await boot('A1', oldKey);
      await boot('A2', oldKey);
      const oldOnly = await phase(6_000);
      const [oldEntry] = await entries();
      const rollout = { logins: env.fake.calls.auth, refreshes: env.fake.calls.refresh };
      await boot('B1', newKeyValue);
      const b1Start = {
        logins: env.fake.calls.auth - rollout.logins,
        refreshes: env.fake.calls.refresh - rollout.refreshes,
      };
      await stop('A1');
      const b2Before = env.fake.calls.auth + env.fake.calls.refresh;
      await boot('B2', newKeyValue);
      const b2Start = env.fake.calls.auth + env.fake.calls.refresh - b2Before;
      const mixed = await phase(6_000);
      const entriesDuringRollout = await entries();
      await stop('A2');
      const newOnly = await phase(6_000);
      clearInterval(callers);

      const figures = {
        oldOnly,
        b1Start,
        b2Start,
        mixed,
        newOnly,
        entriesDuringRollout: entriesDuringRollout.length,
        served,
        invalid,
        refreshReused: env.fake.calls.refreshReused,
        callerErrors,
        warnings: logs.at('warn', 'error'),
      };
      console.log(`encryptionKey rotation: ${JSON.stringify(figures)}`);

      // The new key reads nothing the old key wrote: B1 logs in at start, and B2 adopts B1's token.
      expect(b1Start).toEqual({ logins: 1, refreshes: 0 });
      expect(b2Start).toBe(0);
      // Two entries side by side (the old one stays: it has no TTL), each group renewing its own token.
      expect(entriesDuringRollout).toHaveLength(2);
      expect(entriesDuringRollout).toContain(oldEntry);
      // 6 s of 3 s tokens (renewed about every 2 s): about 3 renewals for one group, about 6 for two.
      const renewals = (p: { logins: number; refreshes: number }): number => p.logins + p.refreshes;
      expect(renewals(oldOnly)).toBeLessThanOrEqual(4);
      expect(renewals(mixed)).toBeGreaterThan(renewals(oldOnly));
      expect(renewals(mixed)).toBeLessThanOrEqual(2 * 4);
      expect(renewals(newOnly)).toBeLessThanOrEqual(4);
      // No fight: no refresh token sent twice, no token refused, nothing logged above `log`.
      expect(env.fake.calls.refreshReused).toBe(0);
      expect(invalid).toBe(0);
      expect(served).toBeGreaterThan(500);
      expect(callerErrors).toEqual([]);
      expect(figures.warnings).toEqual([]);
    } finally {
      clearInterval(callers);
    }
  }, 40_000);
});
