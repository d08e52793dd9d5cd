import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import {
  InProcessTokenStore,
  TransferAuthModule,
  type TransferAuthModuleOptions,
  type TransferTokenStore,
} from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, waitFor } from '../support/e2e';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/** A secret manager the test controls: what `provider` answers, and how often it was asked. */
class SecretSource {
  calls = 0;
  constructor(public value: string) {}
  readonly provider = (): string => {
    this.calls++;
    return this.value;
  };
}

const newSecret = (): string => `test-secret-${randomBytes(12).toString('hex')}`;

/**
 * `agentSecret` as a provider with a shared store: the store must encrypt with a key of its own (one
 * derived from a secret that rotates would change with it), and with one, a fleet keeps sharing one
 * token across a rotation. Runs a redis-server of its own (test/support/redis/redis-server.ts).
 */
describe('agentSecret provider with a shared store', () => {
  let redis: RedisProcess;
  let fake: FakeTransferServer;
  const apps: AuthApp[] = [];
  const clients: Redis[] = [];
  const stores: RedisTokenStore[] = [];
  const encryptionKey = randomBytes(32);
  let keyPrefix: string;

  const client = (): Redis => {
    const c = new Redis(redis.url);
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  const redisStore = (withKey: boolean): RedisTokenStore => {
    const store = new RedisTokenStore({ client: client(), keyPrefix, ...(withKey ? { encryptionKey } : {}) });
    stores.push(store);
    return store;
  };
  const boot = async (options: TransferAuthModuleOptions): Promise<AuthApp> => {
    const app = await createAuthApp(options);
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });
  beforeEach(async () => {
    keyPrefix = `rotation-${randomBytes(6).toString('hex')}:`;
    fake = await new FakeTransferServer({ agentSecret: newSecret() }).start();
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const store of stores.splice(0)) store.close();
    for (const c of clients.splice(0)) c.disconnect();
    await fake.stop();
  });

  describe('a store without a key of its own is refused at init', () => {
    const message = (registration: string): string =>
      `Invalid TransferAuthModule option \`store\` (${registration}): with \`agentSecret\` as a provider, a shared store needs an encryption key of its own (\`new RedisTokenStore({ client, encryptionKey })\`).`;

    it.each<[string, () => TransferTokenStore]>([
      ['RedisTokenStore without encryptionKey', () => redisStore(false)],
      [
        'a store of your own that does not say ownEncryptionKey: true',
        () => ({ read: async () => undefined, write: async () => true, lock: async () => undefined }),
      ],
    ])('%s: INVALID_CONFIG naming `store`; no provider read, no upstream call', async (_, make) => {
      const source = new SecretSource(fake.agentSecret);
      const error = await captureAuthError(boot(fakeOptions(fake, { agentSecret: source.provider, store: make() })));
      expect(error).toMatchObject({ code: 'INVALID_CONFIG', message: message('the unnamed registration') });
      expect(source.calls).toBe(0);
      expect(fake.calls.total).toBe(0);
    });

    it('names the registration; the same store with a string secret is accepted', async () => {
      const source = new SecretSource(fake.agentSecret);
      const ref = await Test.createTestingModule({
        imports: [
          TransferAuthModule.forRoot({
            ...fakeOptions(fake, { agentSecret: source.provider, store: redisStore(false) }),
            name: 'payouts',
          }),
        ],
      }).compile();
      ref.useLogger(false);
      await expect(ref.init()).rejects.toMatchObject({
        code: 'INVALID_CONFIG',
        message: message('registration `payouts`'),
      });
      await ref.close().catch(() => undefined);

      const app = await boot(fakeOptions(fake, { store: redisStore(false) })); // string secret: key derived from it
      expect(fake.isAccessTokenValid(await app.auth.getAccessToken())).toBe(true);
    });

    it('InProcessTokenStore, which keeps nothing outside the process, is accepted (two registrations share it)', async () => {
      const shared = new InProcessTokenStore();
      const source = new SecretSource(fake.agentSecret);
      const first = await boot(fakeOptions(fake, { agentSecret: source.provider, store: shared }));
      const second = await boot(fakeOptions(fake, { agentSecret: source.provider, store: shared }));
      expect(await second.auth.getAccessToken()).toBe(await first.auth.getAccessToken());
      expect(fake.calls.auth).toBe(1);
    });

    it('a store of your own that says ownEncryptionKey: true is accepted', async () => {
      const inner = new InProcessTokenStore();
      const own: TransferTokenStore = {
        ownEncryptionKey: true,
        read: (key) => inner.read(key),
        write: (key, entry) => inner.write(key, entry),
        lock: (key, ttlMs) => inner.lock(key, ttlMs),
      };
      const source = new SecretSource(fake.agentSecret);
      const app = await boot(fakeOptions(fake, { agentSecret: source.provider, store: own }));
      expect(fake.isAccessTokenValid(await app.auth.getAccessToken())).toBe(true);
      expect(source.calls).toBe(1);
    });
  });

  describe('with RedisTokenStore({ client, encryptionKey })', () => {
    it('two apps share one token across a rotation, and a third started after it adopts it: the store key does not depend on the secret', async () => {
      const vault = { value: fake.agentSecret };
      const sources = [0, 1, 2].map(() => new SecretSource(''));
      for (const source of sources) Object.defineProperty(source, 'value', { get: () => vault.value });
      const options = (i: number): TransferAuthModuleOptions =>
        fakeOptions(fake, {
          agentSecret: (sources[i] as SecretSource).provider,
          refresh: false,
          store: redisStore(true),
        });

      const a = await boot(options(0));
      const b = await boot(options(1));
      const first = await a.auth.getAccessToken();
      expect(await b.auth.getAccessToken()).toBe(first);
      expect(fake.calls.auth).toBe(1);
      const keysBefore = (await clients[0]!.keys(`${keyPrefix}*`)).sort();
      expect(keysBefore).toHaveLength(1);
      expect(keysBefore[0]).toMatch(/^rotation-[0-9a-f]{12}:\{[0-9a-f]{32}\}:token$/);

      // Rotation: upstream and secret manager together; one process renews with the new secret.
      const rotated = newSecret();
      fake.setAgentSecret(rotated);
      vault.value = rotated;
      const second = await a.auth.forceRefresh();
      expect(second).not.toBe(first);
      await waitFor(
        () => b.auth.getStatus().accessTokenFingerprint === a.auth.getStatus().accessTokenFingerprint,
        'b to adopt',
      );
      expect(await b.auth.getAccessToken()).toBe(second);

      const c = await boot(options(2));
      expect(await c.auth.getAccessToken()).toBe(second);
      expect(fake.calls.auth).toBe(2);
      expect(fake.requests.filter((r) => r.endpoint === 'auth').map((r) => r.status)).toEqual([200, 200]);
      expect((await clients[0]!.keys(`${keyPrefix}*:token`)).sort()).toEqual(keysBefore);
      // Only the process that logged in read the secret; the others adopted.
      expect(sources.map((s) => s.calls)).toEqual([2, 0, 0]);
    });

    it('why the key of its own: with string secrets (a key derived from each), a rotation splits the fleet', async () => {
      const options = (agentSecret: string): TransferAuthModuleOptions =>
        fakeOptions(fake, { agentSecret, refresh: false, store: redisStore(false) });
      const old = await boot(options(fake.agentSecret));
      const rotated = newSecret();
      fake.setAgentSecret(rotated);
      const renewed = await boot(options(rotated)); // a replica restarted with the new secret
      expect(fake.calls.auth).toBe(2); // it could not use the token of the one on the old secret
      expect(await renewed.auth.getAccessToken()).not.toBe(await old.auth.getAccessToken());
      expect(await clients[0]!.keys(`${keyPrefix}*:token`)).toHaveLength(2);
    });

    it('a process whose provider lags behind still adopts the token its peers got with the new secret', async () => {
      const fresh = new SecretSource(fake.agentSecret);
      const lagging = new SecretSource(fake.agentSecret);
      const options = (source: SecretSource): TransferAuthModuleOptions =>
        fakeOptions(fake, { agentSecret: source.provider, refresh: false, store: redisStore(true) });
      const a = await boot(options(fresh));
      const b = await boot(options(lagging));
      expect(fake.calls.auth).toBe(1);

      fake.setAgentSecret(newSecret());
      fresh.value = fake.agentSecret; // b's secret manager has not caught up
      const token = await a.auth.forceRefresh();
      await waitFor(
        () => b.auth.getStatus().accessTokenFingerprint === a.auth.getStatus().accessTokenFingerprint,
        'b to adopt',
      );
      expect(await b.auth.getAccessToken()).toBe(token);
      expect(fake.isAccessTokenValid(token)).toBe(true);
      expect(lagging.calls).toBe(0);
      expect(fake.calls.auth).toBe(2);
    });
  });

  describe('the renewal lock is a 4 s lease that its holder extends, whatever the secret source', () => {
    it('a string secret and a provider take the same lease; a login longer than it keeps the lock', async () => {
      for (const agentSecret of [fake.agentSecret, new SecretSource(fake.agentSecret).provider]) {
        keyPrefix = `rotation-${randomBytes(6).toString('hex')}:`;
        const store = redisStore(true);
        const lock = jest.spyOn(store, 'lock');
        const slow = typeof agentSecret === 'function';
        // The provider's login outlives the lease: the holder extends it (a third of it at a time).
        fake.failNext('auth', { kind: 'delay', ms: slow ? 5_000 : 200 });
        const booting = boot(fakeOptions(fake, { agentSecret, requestTimeoutMs: 8_000, refresh: false, store }));
        await fake.waitForCalls(fake.calls.auth + 1, 'auth');
        const [lockKey] = await clients[0]!.keys(`${keyPrefix}*:lock`);
        if (slow) {
          await new Promise((resolve) => setTimeout(resolve, 4_500)); // past the lease it was taken with
          expect(await clients[0]!.pttl(lockKey as string)).toBeGreaterThan(1_000); // extended, still held
        }
        await booting;
        expect(lock.mock.calls.map(([, ttlMs]) => ttlMs)).toEqual([4_000]);
        // Released once the token is written, which follows the callers' answer.
        for (let i = 0; i < 100 && (await clients[0]!.exists(lockKey as string)) === 1; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(await clients[0]!.exists(lockKey as string)).toBe(0);
      }
    });
  });
});
