import type { INestApplicationContext } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

/** What the fleet recipes read from the environment, and the test's handles on it. */
export interface FleetRecipeEnv {
  readonly fake: FakeTransferServer;
  /** This test's key prefix (`FREEDOMPAY_STORE_PREFIX`): its keys, deleted after it. */
  readonly prefix: string;
  /** A client of the test's own, to look at the keys. */
  readonly admin: Redis;
  /** Apps closed after the test (before its keys are deleted). */
  readonly apps: INestApplicationContext[];
  /** The keys under this test's prefix whose name matches `suffix` (SCAN, never KEYS). */
  keys(suffix?: string): Promise<string[]>;
}

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/**
 * For a describe block (or a file) running the fleet recipes of docs/fleet.md against the machine's shared
 * Redis: before each test, a FakeTransferServer and the variables the recipes read (`REDIS_URL`,
 * `FREEDOMPAY_*`, a key prefix of the test's own); after it, the apps closed, the test's keys deleted
 * (nothing is flushed), the fake stopped and the environment restored.
 */
export function useFleetRecipeEnv(
  label: string,
  fakeOptions: ConstructorParameters<typeof FakeTransferServer>[0] = {},
) {
  const saved = { ...process.env };
  const apps: INestApplicationContext[] = [];
  let current: { fake: FakeTransferServer; prefix: string; admin: Redis } | undefined;
  const now = (): NonNullable<typeof current> => {
    if (current === undefined) throw new Error('the fleet recipe environment is set up before each test only');
    return current;
  };
  const keys = async (suffix = ''): Promise<string[]> => {
    const { admin, prefix } = now();
    const found: string[] = [];
    for await (const batch of admin.scanStream({ match: `${prefix}*${suffix}`, count: 1000 })) {
      found.push(...(batch as string[]));
    }
    return found.sort();
  };

  beforeEach(async () => {
    const fake = await new FakeTransferServer(fakeOptions).start();
    const prefix = `${label}-${randomUUID()}:`;
    const admin = new Redis(REDIS_URL, { lazyConnect: true });
    await admin.connect();
    current = { fake, prefix, admin };
    Object.assign(process.env, {
      REDIS_URL,
      FREEDOMPAY_AGENT_ID: fake.agentId,
      FREEDOMPAY_AGENT_SECRET: fake.agentSecret,
      FREEDOMPAY_BASE_URL: fake.url,
      FREEDOMPAY_STORE_PREFIX: prefix,
    });
  });

  afterEach(async () => {
    const { fake, admin } = now();
    await Promise.all(apps.splice(0).map((app) => app.close().catch(() => undefined)));
    const left = await keys();
    if (left.length > 0) await admin.del(...left);
    await admin.quit();
    await fake.stop();
    current = undefined;
    process.env = { ...saved };
  });

  const env: FleetRecipeEnv = {
    get fake() {
      return now().fake;
    },
    get prefix() {
      return now().prefix;
    },
    get admin() {
      return now().admin;
    },
    apps,
    keys,
  };
  return env;
}
