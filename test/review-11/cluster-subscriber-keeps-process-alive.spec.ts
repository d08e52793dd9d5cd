import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { builtPackage } from '../support/built-package';
import {
  startRedis,
  startRedisCluster,
  type RedisClusterProcess,
  type RedisProcess,
} from '../support/redis/redis-server';

/**
 * Finding: lib/redis/redis-client.ts unrefs the subscriber's socket ("Never what keeps a process alive: the
 * app's own client does that as long as it is open") only for a standalone ioredis client
 * (`if (sub.isCluster !== true)`), and node-redis' `sub.unref?.()` does nothing for a cluster client. With
 * a cluster client, a process whose app closed its own Redis client but never shut the Nest app down (a
 * script, a worker, a test) no longer exits: the store's duplicate cluster connection holds it.
 */

const ROOT = join(__dirname, '..', '..');
const EXIT_WITHIN_MS = 5_000;

/** A child that builds a client, watches through a store, closes its own client: does it exit? */
function child(pkg: string, make: string, withStore = true): Promise<'exited' | 'still running'> {
  const script = `
    const { RedisTokenStore } = require(${JSON.stringify(join(pkg, 'redis'))});
    (async () => {
      const app = await (${make})();
      if (${String(withStore)}) new RedisTokenStore({ client: app }).watch('0'.repeat(32), () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await (typeof app.quit === 'function' && !app.close ? app.quit() : app.close());
    })();`;
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['-e', script], { cwd: ROOT, stdio: 'ignore' });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve('still running');
    }, EXIT_WITHIN_MS);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve('exited');
    });
  });
}

describe('review 11: the store subscriber and process exit', () => {
  let pkg: string;
  let redis: RedisProcess;
  let cluster: RedisClusterProcess;

  beforeAll(async () => {
    pkg = builtPackage();
    [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([redis.stop(), cluster.stop()]);
  });

  const standalone = (): string =>
    `async () => { const c = new (require('ioredis').Redis)(${JSON.stringify(redis.url)}); await c.ping(); return c; }`;
  const ioCluster = (): string =>
    `async () => { const c = new (require('ioredis').Cluster)(${JSON.stringify(cluster.startupNodes)}); await c.call('PING'); return c; }`;
  const nodeCluster = (): string =>
    `async () => { const c = require('redis').createCluster({ rootNodes: ${JSON.stringify(cluster.nodes.map((n) => ({ url: n.url })))} }); await c.connect(); return c; }`;

  it('with ioredis Cluster and no store (control), a process whose app closed its client exits', async () => {
    await expect(child(pkg, ioCluster(), false)).resolves.toBe('exited');
  }, 20_000);

  it.each<[string, () => string]>([
    ['ioredis Redis (control)', standalone],
    ['ioredis Cluster', ioCluster],
    ['node-redis createCluster', nodeCluster],
  ])(
    'with %s, a process whose app closed its client exits',
    async (_name, make) => {
      // Expected: exits, as with a standalone client. Actual with a cluster client: still running.
      await expect(child(pkg, make())).resolves.toBe('exited');
    },
    20_000,
  );
});
