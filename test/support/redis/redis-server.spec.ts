import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import * as ts from 'typescript';
import {
  captureMonitor,
  redisCliBinary,
  redisServerBinary,
  removeOnExit,
  startRedis,
  startRedisCluster,
  type RedisClusterProcess,
} from './redis-server';

/** Whether a process with `pid` still exists (a zombie counts as gone: it has exited, only its parent has not reaped it). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function waitUntilGone(pid: number, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('redis-server test support', () => {
  const clients: { disconnect(): void }[] = [];
  const servers: { stop(): Promise<void> }[] = [];

  /** Tracks an ioredis client so it is always closed, even when an assertion fails. */
  function track<T extends { disconnect(): void }>(client: T): T {
    clients.push(client);
    return client;
  }

  async function started<T extends { stop(): Promise<void> }>(server: Promise<T>): Promise<T> {
    const value = await server;
    servers.push(value);
    return value;
  }

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  describe('binaries', () => {
    it('resolves redis-server and redis-cli on PATH', () => {
      expect(redisServerBinary()).toMatch(/[/\\]redis-server$/);
      expect(redisCliBinary()).toMatch(/[/\\]redis-cli$/);
    });

    it('throws a single clear line when a binary is not on PATH', () => {
      const emptyDir = mkdtempSync(join(tmpdir(), 'no-redis-'));
      try {
        // Even with redis-server's own folder on PATH, a missing file there must not resolve.
        const env = { PATH: [emptyDir, join(emptyDir, 'missing')].join(':') };
        expect(() => redisServerBinary(env)).toThrow(
          new Error(
            'redis-server is not on PATH: install Redis (e.g. apt-get install redis-server) to run the Redis tests',
          ),
        );
        expect(() => redisCliBinary(env)).toThrow(
          new Error(
            'redis-cli is not on PATH: install Redis (e.g. apt-get install redis-server) to run the Redis tests',
          ),
        );
        expect(() => redisServerBinary({})).toThrow(/^redis-server is not on PATH: [^\n]+$/);
        // The real binary's folder resolves it again.
        expect(redisServerBinary({ PATH: `${emptyDir}:${dirname(redisServerBinary())}` })).toBe(redisServerBinary());
      } finally {
        rmSync(emptyDir, { recursive: true, force: true });
      }
    });
  });

  describe('startRedis', () => {
    it('starts a server without persistence that answers ioredis, and stops it (idempotently)', async () => {
      const redis = await started(startRedis({ args: ['--maxmemory', '1mb'] }));
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      expect(redis.pid).toBeGreaterThan(0);
      expect(redis.running).toBe(true);
      expect(existsSync(redis.dir)).toBe(true);

      const client = track(new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 }));
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      expect(await redis.command('PING')).toBe('PONG');
      expect(await redis.command('CONFIG', 'GET', 'save')).toBe('save\n');
      expect(await redis.command('CONFIG', 'GET', 'appendonly')).toBe('appendonly\nno');
      expect(await redis.command('CONFIG', 'GET', 'dir')).toBe(`dir\n${redis.dir}`);
      expect(await redis.command('CONFIG', 'GET', 'maxmemory')).toBe('maxmemory\n1048576');
      await expect(redis.command('NO-SUCH-COMMAND')).rejects.toThrow(/unknown command/);
      client.disconnect();

      const { pid, dir, port } = redis;
      await redis.stop();
      expect(redis.running).toBe(false);
      expect(isAlive(pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
      expect(await accepts(port)).toBe(false);
      await expect(redis.stop()).resolves.toBeUndefined();
      await expect(redis.kill()).resolves.toBeUndefined();
    });

    it('gives every server its own port and starts on an explicit port', async () => {
      const [a, b] = await Promise.all([started(startRedis()), started(startRedis())]);
      expect(a.port).not.toBe(b.port);
      const port = a.port;
      await a.stop();
      const c = await started(startRedis({ port }));
      expect(c.port).toBe(port);
      expect(await c.command('PING')).toBe('PONG');
    });

    it('reports a startup failure with the tail of redis-server output', async () => {
      await expect(startRedis({ args: ['--no-such-directive', 'x'] })).rejects.toThrow(
        /^redis-server on 127\.0\.0\.1:\d+ exited during startup[^\n]*\. Output tail:\n[\s\S]*no-such-directive/,
      );
    });

    it('kill + restart gives a NEW, EMPTY server on the same port', async () => {
      const redis = await started(startRedis());
      const before = track(new Redis(redis.url, { maxRetriesPerRequest: 0 }));
      await before.set('restart:key', 'value');
      expect(await redis.command('GET', 'restart:key')).toBe('value');
      before.disconnect();

      const { port, pid: oldPid, dir: oldDir } = redis;
      await redis.kill();
      expect(redis.running).toBe(false);
      expect(isAlive(oldPid)).toBe(false);
      expect(await accepts(port)).toBe(false);

      await redis.restart();
      expect(redis.running).toBe(true);
      expect(redis.port).toBe(port);
      expect(redis.pid).not.toBe(oldPid);
      expect(redis.dir).not.toBe(oldDir);
      const after = track(new Redis(redis.url, { maxRetriesPerRequest: 0 }));
      expect(await after.get('restart:key')).toBeNull();
      expect(await after.dbsize()).toBe(0);

      // restart() of a running server stops it first.
      await after.set('restart:key', 'again');
      const secondPid = redis.pid;
      await redis.restart();
      expect(redis.pid).not.toBe(secondPid);
      expect(await redis.command('DBSIZE')).toBe('0');
    });

    it('pause makes commands time out; resume makes them work again', async () => {
      const redis = await started(startRedis());
      const client = track(new Redis(redis.url, { commandTimeout: 200, maxRetriesPerRequest: 0 }));
      expect(await client.ping()).toBe('PONG');

      await redis.pause();
      const startedAt = Date.now();
      await expect(client.get('paused:key')).rejects.toThrow(/timed out/i);
      expect(Date.now() - startedAt).toBeLessThan(2_000);
      expect(redis.running).toBe(true);

      await redis.resume();
      expect(await client.set('paused:key', 'v')).toBe('OK');
      expect(await client.get('paused:key')).toBe('v');
    });

    it('config: written to the temp dir at every (re)start and passed first; args still override it', async () => {
      let starts = 0;
      const redis = await started(
        startRedis({
          config: (port) => `maxmemory ${++starts}mb\n# for ${port}\n`,
          args: ['--maxmemory-samples', '7'],
        }),
      );
      expect(readFileSync(join(redis.dir, 'redis.conf'), 'utf8')).toBe(`maxmemory 1mb\n# for ${redis.port}\n`);
      expect(await redis.command('CONFIG', 'GET', 'maxmemory')).toBe('maxmemory\n1048576');
      expect(await redis.command('CONFIG', 'GET', 'maxmemory-samples')).toBe('maxmemory-samples\n7');
      expect(await redis.command('INFO', 'server')).toContain(`config_file:${join(redis.dir, 'redis.conf')}`);
      await redis.restart();
      expect(await redis.command('CONFIG', 'GET', 'maxmemory')).toBe('maxmemory\n2097152');
    });

    it('stop() also ends a paused server', async () => {
      const redis = await started(startRedis());
      await redis.pause();
      const { pid } = redis;
      await redis.stop();
      expect(isAlive(pid)).toBe(false);
    });
  });

  describe('captureMonitor', () => {
    it('captures the commands (keys included) the server executed', async () => {
      const redis = await started(startRedis());
      const client = track(new Redis(redis.url, { maxRetriesPerRequest: 0 }));
      await client.ping();

      const monitor = await captureMonitor(redis.port);
      await client.set('monitor:probe-key', 'probe-value');
      await client.get('monitor:other-key');
      const capture = await monitor.stop();

      expect(capture).toMatch(/"SET" "monitor:probe-key" "probe-value"/i);
      expect(capture).toMatch(/"GET" "monitor:other-key"/i);
      expect(capture).not.toContain('capture-monitor-end');
      expect(capture).not.toContain('+OK');
      await expect(monitor.stop()).resolves.toBe(capture);
    });

    it('returns what it has when the server goes away', async () => {
      const redis = await started(startRedis());
      const monitor = await captureMonitor(redis.port);
      await redis.command('SET', 'gone:key', '1');
      await redis.kill();
      expect(await monitor.stop()).toContain('"gone:key"');
    });

    it('rejects when nothing listens', async () => {
      const redis = await startRedis();
      const { port } = redis;
      await redis.stop();
      await expect(captureMonitor(port)).rejects.toThrow(/MONITOR on 127\.0\.0\.1:\d+ failed/);
    });
  });

  describe('startRedisCluster', () => {
    let cluster: RedisClusterProcess;

    beforeAll(async () => {
      cluster = await startRedisCluster();
    }, 30_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    it('forms a 3-master cluster with free ports whose bus ports fit', async () => {
      expect(cluster.nodes).toHaveLength(3);
      const ports = cluster.nodes.map((node) => node.port);
      expect(new Set(ports).size).toBe(3);
      for (const port of ports) expect(port + 10_000).toBeLessThanOrEqual(65_535);
      expect(cluster.startupNodes).toEqual(ports.map((port) => ({ host: '127.0.0.1', port })));
      for (const node of cluster.nodes) {
        const info = await node.command('CLUSTER', 'INFO');
        expect(info).toContain('cluster_state:ok');
        expect(info).toContain('cluster_known_nodes:3');
      }
    });

    it('serves ioredis Cluster SET/GET on keys in different slots and nodes; MONITOR per node sees them', async () => {
      const client = track(new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 0 } }));
      const monitors = await Promise.all(cluster.nodes.map((node) => captureMonitor(node.port)));
      const keys = Array.from({ length: 30 }, (_, i) => `cluster:key:${i}`);
      for (const key of keys) expect(await client.set(key, `value-of-${key}`)).toBe('OK');
      for (const key of keys) expect(await client.get(key)).toBe(`value-of-${key}`);
      const captures = await Promise.all(monitors.map((monitor) => monitor.stop()));

      const slots = new Set(await Promise.all(keys.map((key) => cluster.nodes[0]!.command('CLUSTER', 'KEYSLOT', key))));
      expect(slots.size).toBeGreaterThan(3);
      const sizes = await Promise.all(cluster.nodes.map(async (node) => Number(await node.command('DBSIZE'))));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
      for (const size of sizes) expect(size).toBeGreaterThan(0);
      // Every key was written on exactly one node, and that node's MONITOR saw it (ioredis sends lower-case names).
      for (const key of keys) {
        const seenOn = captures.filter((capture) => capture.toLowerCase().includes(`"set" "${key}" `));
        expect(seenOn).toHaveLength(1);
      }
      client.disconnect();
    });
  });

  describe('process exit', () => {
    let workDir: string;
    let modulePath: string;

    beforeAll(() => {
      // The module only uses Node built-ins: transpile it and load it in a plain Node child.
      workDir = mkdtempSync(join(tmpdir(), 'redis-support-'));
      modulePath = join(workDir, 'redis-server.js');
      // topology.ts (and resp.ts, which it uses) only use Node built-ins and this module too.
      for (const name of ['redis-server', 'resp', 'topology']) {
        const source = readFileSync(join(__dirname, `${name}.ts`), 'utf8');
        const { outputText } = ts.transpileModule(source, {
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
        });
        writeFileSync(join(workDir, `${name}.js`), outputText);
      }
    });

    afterAll(() => rmSync(workDir, { recursive: true, force: true }));

    /** Starts a Node child that starts a server; resolves the server's pid/dir, and how the child ended. */
    function childWithServer(mode: 'exit' | 'signal'): Promise<{
      server: { pid: number; dir: string };
      ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    }> {
      const script = `
        const { startRedis } = require(${JSON.stringify(modulePath)});
        startRedis().then((redis) => {
          process.stdout.write(JSON.stringify({ pid: redis.pid, dir: redis.dir }) + '\\n');
          if (${JSON.stringify(mode)} === 'exit') process.exit(0);
        });`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => {
          clearTimeout(guard);
          resolve({ code, signal });
        }),
      );
      return new Promise((resolve, reject) => {
        let out = '';
        let err = '';
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (!out.includes('\n')) return;
          const server = JSON.parse(out.slice(0, out.indexOf('\n'))) as { pid: number; dir: string };
          if (mode === 'signal') child.kill('SIGTERM');
          resolve({ server, ended });
        });
        void ended.then(({ code, signal }) => reject(new Error(`child ended early (${code}/${signal}): ${err}`)));
      });
    }

    it('kills the servers when the process exits', async () => {
      const { server, ended } = await childWithServer('exit');
      expect(await ended).toEqual({ code: 0, signal: null });
      expect(await waitUntilGone(server.pid)).toBe(true);
      expect(existsSync(server.dir)).toBe(false);
    });

    it('kills a whole Sentinel topology (2 data nodes, 3 Sentinels) when the process exits', async () => {
      const script = `
        const { startSentinelTopology } = require(${JSON.stringify(join(workDir, 'topology.js'))});
        startSentinelTopology().then((t) => {
          const all = [...t.nodes, ...t.sentinelProcesses];
          process.stdout.write(JSON.stringify(all.map((s) => ({ pid: s.pid, dir: s.dir }))) + '\\n');
          process.exit(0);
        }, (error) => { console.error(error); process.exit(2); });`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const code = await new Promise((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
      const servers = JSON.parse(out) as { pid: number; dir: string }[];
      expect(servers).toHaveLength(5);
      for (const server of servers) {
        expect(await waitUntilGone(server.pid)).toBe(true);
        expect(existsSync(server.dir)).toBe(false);
      }
    }, 30_000);

    it('removes a dir registered with removeOnExit when the process exits, even with no server left', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'owned-'));
      const script = `
        const { removeOnExit } = require(${JSON.stringify(modulePath)});
        removeOnExit(${JSON.stringify(dir)});
        process.exit(0);`;
      const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
      await new Promise((resolve) => child.once('exit', resolve));
      expect(existsSync(dir)).toBe(false);
      // In-process: the returned function removes it now.
      const other = mkdtempSync(join(tmpdir(), 'owned-'));
      const remove = removeOnExit(other);
      await remove();
      await remove();
      expect(existsSync(other)).toBe(false);
    });

    it('kills the servers on SIGTERM and still dies of the signal', async () => {
      const { server, ended } = await childWithServer('signal');
      expect(await ended).toEqual({ code: null, signal: 'SIGTERM' });
      expect(await waitUntilGone(server.pid)).toBe(true);
      expect(existsSync(server.dir)).toBe(false);
    });
  });
});
