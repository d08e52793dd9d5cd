import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import type { TransferTokenStoreContext } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore, type RedisTokenStoreClient } from 'nestjs-freedompay-transfer-auth/redis';
import { SCRIPTS } from '../../../lib/redis/redis-token-store';
import { aclDryRun, aclLine, createAclUser, STORE_COMMANDS, STORE_PREFIX, storeAclRules, type AclUser } from './acl';
import { captureMonitor, startRedis, type RedisProcess } from './redis-server';
import { RespError, sendCommands } from './resp';
import { storedEntry } from './store-fixtures';

/**
 * The ACL helpers, and the least-privilege rule set of the store established with them: every command the
 * store sends (seen by MONITOR, script-internal calls included) passes `ACL DRYRUN` for a user with exactly
 * `storeAclRules()`, and the store's flows work under that user, with ioredis and node-redis.
 */

const noop = (): void => undefined;

/** The arguments of one MONITOR line (`<time> [<db> <source>] "cmd" "arg" ...`), unescaped. */
function monitorArgs(line: string): { source: string; args: string[] } | undefined {
  const head = /^\+?\d+\.\d+ \[\d+ ([^\]]+)\] /.exec(line);
  if (head === null) return undefined;
  const args: string[] = [];
  let i = head[0].length;
  while (i < line.length) {
    if (line[i] !== '"') {
      i++;
      continue;
    }
    let value = '';
    i++;
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\') {
        const next = line[i + 1]!;
        const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };
        if (next === 'x') {
          value += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else {
          value += simple[next] ?? next;
          i += 2;
        }
      } else value += line[i++];
    }
    args.push(value);
    i++;
  }
  return { source: head[1]!, args };
}

/** The names of the Redis commands a Lua script calls (`redis.call('X'` / `redis.pcall('X'`), lower-case. */
function scriptCommands(script: string): string[] {
  return [...script.matchAll(/redis\.p?call\(\s*'([A-Za-z]+)'/g)].map((m) => m[1]!.toLowerCase());
}

type Replicated = (key: string, timeoutMs: number, context: TransferTokenStoreContext) => Promise<boolean>;

/** The store's flows: what a renewal, a lock holder and a watcher do, with whatever this lib version has. */
async function storeFlows(client: RedisTokenStoreClient, prefix: string): Promise<Record<string, unknown>> {
  const store = new RedisTokenStore({ client, keyPrefix: prefix });
  const key = randomBytes(8).toString('hex');
  const other = randomBytes(8).toString('hex');
  const warnings: string[] = [];
  const context: TransferTokenStoreContext = {
    encryptionKey: randomBytes(32),
    warn: (code, what) => warnings.push(`${code}: ${what}`),
  };
  const out: Record<string, unknown> = {};
  try {
    let heard = 0;
    const stopMine = store.watch(key, () => heard++);
    const stopOther = store.watch(other, noop);
    out.readEmpty = await store.read(key, context);
    out.write1 = await store.write(key, storedEntry(1), context);
    out.write2 = await store.write(key, storedEntry(2), context);
    out.read = (await store.read(key, context))?.version;
    const lock = await store.lock(key, 5_000);
    out.locked = lock !== undefined;
    const extend = (lock as { extend?: (ms: number) => Promise<boolean> } | undefined)?.extend;
    if (extend) out.extended = await extend(5_000);
    await lock?.release();
    const replicated = (store as unknown as { replicated?: Replicated }).replicated;
    if (typeof replicated === 'function') out.replicated = await replicated.call(store, key, 1_000, context);
    // A hint for the watcher (once its SUBSCRIBE has landed), then an UNSUBSCRIBE (one of two channels stops).
    const deadline = Date.now() + 3_000;
    for (let version = 3; heard === 0 && Date.now() < deadline; version++) {
      await store.write(key, storedEntry(version), context);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    out.heard = heard > 0;
    stopOther();
    await new Promise((resolve) => setTimeout(resolve, 100));
    stopMine();
  } finally {
    store.close();
  }
  out.warnings = warnings;
  return out;
}

describe('ACL helpers and the store least-privilege rules (Redis 7)', () => {
  let redis: RedisProcess;
  let replica: RedisProcess;
  const prefix = STORE_PREFIX;

  beforeAll(async () => {
    redis = await startRedis();
    // A replica, so that the store's replication check also sends WAIT.
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(redis.port)] });
    const deadline = Date.now() + 10_000;
    while (!(await redis.command('INFO', 'replication')).includes('state=online')) {
      if (Date.now() > deadline) throw new Error('replica not online');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  afterAll(async () => {
    await replica?.stop();
    await redis?.stop();
  });

  it('createAclUser makes a user that logs in with its URL and has exactly its rules', async () => {
    const user = await createAclUser(redis, ['~app:*', '&app:*', '+get', '+set'], { name: 'app-user' });
    expect(user.url).toBe(`redis://app-user:${user.password}@127.0.0.1:${redis.port}`);
    const line = await aclLine(redis, user);
    expect(line).toMatch(/^user app-user on .* ~app:\* resetchannels &app:\* -@all \+\S+ \+\S+$/);
    // Redis lists the granted commands in an order of its own.
    expect(
      line
        .split(' ')
        .filter((rule) => rule.startsWith('+'))
        .sort(),
    ).toEqual(['+get', '+set']);
    const client = new Redis(user.url, { maxRetriesPerRequest: 0, enableReadyCheck: false });
    try {
      expect(await client.set('app:x', '1')).toBe('OK');
      await expect(client.set('other:x', '1')).rejects.toThrow(/^NOPERM .*keys/);
      await expect(client.del('app:x')).rejects.toThrow(/^NOPERM .*'del' command/);
    } finally {
      client.disconnect();
    }
    expect(await aclDryRun(redis, user, 'GET', 'app:x')).toBe('OK');
    expect(await aclDryRun(redis, user, 'GET', 'other:x')).toBe(
      "This user has no permissions to access the 'other:x' key",
    );
  });

  it('without &channels (Redis 7 default resetchannels) a PUBLISH in EVAL and a SUBSCRIBE are refused', async () => {
    expect(await redis.command('CONFIG', 'GET', 'acl-pubsub-default')).toBe('acl-pubsub-default\nresetchannels');
    const rules = storeAclRules(prefix).filter((rule) => !rule.startsWith('&'));
    const user = await createAclUser(redis, rules);
    expect(await aclLine(redis, user)).toContain(' resetchannels ');
    const entry = `${prefix}{agent}:token`;
    const channel = `${prefix}{agent}:changed`;
    const [evalReply, afterScript, pcallReply, subscribeReply] = await sendCommands(
      redis.port,
      [
        [
          'EVAL',
          "redis.call('HSET', KEYS[1], 'v', '1')\nredis.call('PUBLISH', ARGV[1], '1')\nreturn 1",
          1,
          entry,
          channel,
        ],
        ['HGET', entry, 'v'],
        ['EVAL', "return redis.pcall('PUBLISH', ARGV[1], '1')", 1, entry, channel],
        ['SUBSCRIBE', channel],
      ],
      user.auth,
    );
    // The script fails at the PUBLISH, with ERR (not NOPERM), after the HSET before it took effect.
    expect((evalReply as RespError).reply).toMatch(
      /^ERR The user executing the script can't publish to the channel mentioned in the command script: [0-9a-f]{40}, on @user_script:2\.$/,
    );
    expect(afterScript).toBe('1');
    expect((pcallReply as RespError).reply).toBe(
      "ERR The user executing the script can't publish to the channel mentioned in the command",
    );
    expect((subscribeReply as RespError).reply).toBe(
      'NOPERM this user has no permissions to access one of the channels used as arguments',
    );
    expect(await aclDryRun(redis, user, 'PUBLISH', channel, '1')).toBe(
      `This user has no permissions to access the '${channel}' channel`,
    );
    expect(await aclDryRun(redis, user, 'SUBSCRIBE', channel)).toBe(
      `This user has no permissions to access the '${channel}' channel`,
    );
    // With the channel pattern, both pass.
    const granted = await createAclUser(redis, storeAclRules(prefix));
    expect(await aclDryRun(redis, granted, 'PUBLISH', channel, '1')).toBe('OK');
    expect(await aclDryRun(redis, granted, 'SUBSCRIBE', channel)).toBe('OK');
  });

  it('categories are not enough: TIME, INFO and WAIT are outside +@read +@write +@scripting +@pubsub', async () => {
    const user = await createAclUser(redis, [
      `~${prefix}*`,
      `&${prefix}*`,
      '+@read',
      '+@write',
      '+@scripting',
      '+@pubsub',
    ]);
    expect(await aclDryRun(redis, user, 'TIME')).toBe("This user has no permissions to run the 'time' command");
    expect(await aclDryRun(redis, user, 'INFO', 'replication')).toBe(
      "This user has no permissions to run the 'info' command",
    );
    expect(await aclDryRun(redis, user, 'WAIT', '1', '100')).toBe(
      "This user has no permissions to run the 'wait' command",
    );
    expect(await redis.command('COMMAND', 'INFO', 'TIME')).toContain('@fast');
    expect(await redis.command('COMMAND', 'INFO', 'TIME')).not.toMatch(/@read|@write/);
  });

  it('storeAclRules() grants exactly the commands the store scripts call, and nothing outside its keys', async () => {
    const called = new Set(Object.values(SCRIPTS).flatMap(scriptCommands));
    const granted = new Set<string>(STORE_COMMANDS);
    const direct = ['eval', 'wait', 'subscribe', 'unsubscribe'];
    for (const command of called)
      expect({ command, granted: granted.has(command) }).toEqual({ command, granted: true });
    for (const command of granted) {
      if (!direct.includes(command))
        expect({ command, called: called.has(command) }).toEqual({ command, called: true });
    }
    const user = await createAclUser(redis, storeAclRules(prefix));
    expect(await aclDryRun(redis, user, 'GET', 'someone-else:key')).toMatch(
      /no permissions to access the 'someone-else:key' key/,
    );
    expect(await aclDryRun(redis, user, 'INFO')).toBe("This user has no permissions to run the 'info' command");
    expect(await aclDryRun(redis, user, 'INFO', 'replication')).toBe('OK');
    expect(await aclDryRun(redis, user, 'KEYS', '*')).toMatch(/no permissions to run the 'keys' command/);
    expect(await aclDryRun(redis, user, 'FLUSHALL')).toMatch(/no permissions to run the 'flushall' command/);
    console.log(
      `least-privilege ACL (Redis ${await redis.command('INFO', 'server').then((i) => /redis_version:(\S+)/.exec(i)?.[1])}): ${await aclLine(redis, user)}`,
    );
  });

  describe('the store under a user with exactly storeAclRules()', () => {
    let user: AclUser;
    let seen: { source: string; args: string[] }[];

    beforeAll(async () => {
      user = await createAclUser(redis, storeAclRules(prefix));
      // What the store sends, as the default user: every command, script-internal ones included.
      const monitor = await captureMonitor(redis.port);
      const admin = new Redis(redis.url, { enableReadyCheck: false });
      admin.on('error', noop);
      try {
        await storeFlows(admin, prefix);
      } finally {
        admin.disconnect();
      }
      seen = (await monitor.stop())
        .split(/\r?\n/)
        .map(monitorArgs)
        .filter((x): x is { source: string; args: string[] } => x !== undefined);
    });

    it('every command the store sent passes ACL DRYRUN for the user, and needs one of its grants', async () => {
      const names = new Set(seen.map(({ args }) => args[0]!.toLowerCase()));
      console.log(`commands the store sent (MONITOR): ${[...names].sort().join(' ')}`);
      for (const name of ['eval', 'hmget', 'time', 'hget', 'hset', 'set', 'get', 'del', 'publish', 'subscribe'])
        expect(names).toContain(name);
      for (const name of names) expect(STORE_COMMANDS as readonly string[]).toContain(name);
      const checked = new Set<string>();
      for (const { args } of seen) {
        const signature = `${args[0]!.toLowerCase()} ${args[0]!.toLowerCase() === 'info' ? args[1] : ''}`;
        if (checked.has(signature)) continue;
        checked.add(signature);
        expect({ args: args.slice(0, 2), dryrun: await aclDryRun(redis, user, ...args) }).toEqual({
          args: args.slice(0, 2),
          dryrun: 'OK',
        });
      }
    });

    const CLIENTS: [string, (url: string) => Promise<{ client: RedisTokenStoreClient; close(): void }>][] = [
      [
        'ioredis v5',
        async (url) => {
          const client = new Redis(url);
          client.on('error', noop);
          await client.call('TIME');
          return { client, close: () => client.disconnect() };
        },
      ],
      [
        'node-redis v5',
        async (url) => {
          const client = createClient({ url });
          client.on('error', noop);
          await client.connect();
          return { client, close: () => client.destroy() };
        },
      ],
    ];

    it.each(CLIENTS)('with %s, the store flows give what they give as the default user', async (_name, make) => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(noop);
      const admin = new Redis(redis.url, { enableReadyCheck: false });
      admin.on('error', noop);
      const app = await make(user.url);
      try {
        const expected = await storeFlows(admin, prefix);
        const got = await storeFlows(app.client, prefix);
        expect(got).toEqual(expected);
        expect(got).toMatchObject({ write1: true, write2: true, read: 2, locked: true, heard: true, warnings: [] });
        // ioredis' own ready check sends a bare INFO: refused, it says so with console.warn and goes on.
        for (const [message] of warn.mock.calls)
          expect(String(message)).toMatch(/^Skipping the ready check because INFO command fails: "NOPERM/);
      } finally {
        app.close();
        admin.disconnect();
        warn.mockRestore();
      }
    });
  });
});
