import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisWithDump, type RedisWithDump } from './persistence';
import { startRedis } from './redis-server';

/** The persistence helper's own checks: a crash brings the server back to its last dump, later writes lost. */
describe('startRedisWithDump', () => {
  const servers: RedisWithDump[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  async function started(options?: Parameters<typeof startRedisWithDump>[0]): Promise<RedisWithDump> {
    const server = await startRedisWithDump(options);
    servers.push(server);
    return server;
  }

  it('crashToSnapshot(): SIGKILL and restart from the last SAVE: the writes since are gone', async () => {
    const redis = await started();
    expect(await redis.command('CONFIG', 'GET', 'dir')).toBe(`dir\n${redis.dataDir}`);
    expect(await redis.command('CONFIG', 'GET', 'save')).toBe('save\n'); // no automatic saves
    await redis.command('SET', 'key', 'old');
    await redis.save();
    expect(existsSync(redis.dumpPath)).toBe(true);
    await redis.command('SET', 'key', 'new');
    await redis.command('SET', 'later', '1');

    const { port, pid } = redis;
    await redis.crashToSnapshot();
    expect(redis.port).toBe(port);
    expect(redis.pid).not.toBe(pid);
    expect(await redis.command('GET', 'key')).toBe('old');
    expect(await redis.command('GET', 'later')).toBe('');
    expect(await redis.command('DBSIZE')).toBe('1');
  });

  it('a graceful stop + restart does not save either (save ""): it also comes back to the last dump', async () => {
    const redis = await started();
    await redis.command('SET', 'key', 'saved');
    await redis.save();
    await redis.command('SET', 'key', 'unsaved');
    await redis.stop();
    expect(existsSync(redis.dataDir)).toBe(false); // stop() ends it: its data dir goes
    await redis.restart();
    expect(await redis.command('DBSIZE')).toBe('0');
  });

  it('crashToSnapshot(copy): back to an older copy although later dumps were saved (a restore from backup)', async () => {
    const redis = await started({ dbfilename: 'store.rdb' });
    expect(redis.dumpPath).toBe(join(redis.dataDir, 'store.rdb'));
    await redis.command('SET', 'v', '1');
    const first = await redis.saveCopy();
    await redis.command('SET', 'v', '2');
    await redis.save();
    await redis.command('SET', 'v', '3');
    await redis.crashToSnapshot(first);
    expect(await redis.command('GET', 'v')).toBe('1');
    await redis.command('SET', 'v', '4');
    await redis.crashToSnapshot(); // the dump is the copy now
    expect(await redis.command('GET', 'v')).toBe('1');
  });

  it('with a dir of the caller: it is used and left in place; plain startRedis with --dir/--dbfilename does the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'caller-data-'));
    try {
      const redis = await startRedisWithDump({ dir });
      await redis.command('SET', 'k', 'v');
      await redis.save();
      await redis.stop();
      expect(existsSync(join(dir, 'dump.rdb'))).toBe(true);

      // startRedis alone: its args win over the defaults, and restart() keeps them.
      const plain = await startRedis({ args: ['--dir', dir, '--dbfilename', 'dump.rdb'] });
      try {
        expect(await plain.command('GET', 'k')).toBe('v');
        await plain.command('SET', 'k', 'lost');
        await plain.kill();
        await plain.restart();
        expect(await plain.command('GET', 'k')).toBe('v');
      } finally {
        await plain.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
