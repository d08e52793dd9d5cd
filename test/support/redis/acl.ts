/**
 * ACL users on a test-owned Redis (6+; `ACL DRYRUN` needs 7.0+): a user with given rules and a URL that logs in
 * as it, and the least-privilege rule set the store needs (established on Redis 7.0.15 by acl.spec.ts, which runs
 * the store's scripts and its subscriber under exactly these rules).
 */
import { randomBytes } from 'node:crypto';
import { RespError, sendCommand, type RespOptions } from './resp';

/** A server on 127.0.0.1 (a `RedisProcess` fits). */
export interface PortOf {
  readonly port: number;
}

export interface AclUser {
  readonly name: string;
  readonly password: string;
  /** `redis://<name>:<password>@127.0.0.1:<port>` (both URL-encoded). */
  readonly url: string;
  /** The rules given, as set after `reset on >password`. */
  readonly rules: readonly string[];
  /** For `sendCommand(port, args, user.auth)`. */
  readonly auth: RespOptions;
}

/**
 * `ACL SETUSER <name> reset on >password ...rules` (`reset`: no keys, no channels, no commands, then the rules),
 * e.g. `['~app:*', '&app:*', '+eval', '+get']`. `name` defaults to a random one, `password` to random hex.
 */
export async function createAclUser(
  server: PortOf,
  rules: readonly string[],
  options: { name?: string; password?: string } = {},
): Promise<AclUser> {
  const name = options.name ?? `user-${randomBytes(4).toString('hex')}`;
  const password = options.password ?? randomBytes(16).toString('hex');
  await sendCommand(server.port, ['ACL', 'SETUSER', name, 'reset', 'on', `>${password}`, ...rules]);
  return {
    name,
    password,
    url: `redis://${encodeURIComponent(name)}:${encodeURIComponent(password)}@127.0.0.1:${server.port}`,
    rules,
    auth: { auth: { user: name, password } },
  };
}

/** `ACL DRYRUN user ...command`: `'OK'`, or the text Redis gives for the refusal (never throws for one). */
export async function aclDryRun(server: PortOf, user: string | AclUser, ...command: string[]): Promise<string> {
  const name = typeof user === 'string' ? user : user.name;
  try {
    return String(await sendCommand(server.port, ['ACL', 'DRYRUN', name, ...command]));
  } catch (error) {
    if (error instanceof RespError) return error.reply;
    throw error;
  }
}

/** `ACL GETUSER`'s view of a user as one `ACL LIST`-style line (`user <name> on ... ~keys &channels +cmds`). */
export async function aclLine(server: PortOf, user: string | AclUser): Promise<string> {
  const name = typeof user === 'string' ? user : user.name;
  const list = (await sendCommand(server.port, ['ACL', 'LIST'])) as string[];
  const line = list.find((entry) => entry.startsWith(`user ${name} `));
  if (line === undefined) throw new Error(`no ACL user ${name} on port ${server.port}`);
  return line;
}

/** The store's key prefix by default (`RedisTokenStore`'s `keyPrefix`). */
export const STORE_PREFIX = 'freedompay-transfer-auth:';

/**
 * The commands the store sends, each checked with `ACL DRYRUN` and by running the store's scripts under a user
 * with exactly these (acl.spec.ts):
 *   - `EVAL` (the store runs every Redis call as a script; not `EVALSHA`, not `SCRIPT`);
 *   - inside the scripts: `HMGET TIME HGET HSET PERSIST PEXPIRE PUBLISH SET GET DEL` and `INFO replication`
 *     (a script's `redis.call` is checked against the calling user, command by command, key by key, channel
 *     by channel);
 *   - `WAIT` (sent directly: "This Redis command is not allowed from script");
 *   - `SUBSCRIBE UNSUBSCRIBE` on the store's own pub/sub connection.
 * `TIME` is in no category but `@fast` on Redis 7.0, `INFO` in `@slow @dangerous`, `WAIT` in `@slow @connection`:
 * `+@read +@write +@scripting +@pubsub` is not enough.
 */
export const STORE_COMMANDS = [
  'eval',
  'hmget',
  'time',
  'hget',
  'hset',
  'pexpire',
  'persist',
  'publish',
  'set',
  'get',
  'del',
  'info',
  'wait',
  'subscribe',
  'unsubscribe',
] as const;

/**
 * The least-privilege rules for a `RedisTokenStore` with `keyPrefix` `prefix`: its keys, its channels (Redis 7
 * gives a new user none: `acl-pubsub-default resetchannels`), its commands; `INFO` only with `replication` as
 * its first argument (`+info|replication`). As an `ACL SETUSER` line:
 * `ACL SETUSER <name> on ><password> ~<prefix>* &<prefix>* -@all +eval +hmget ... +info|replication ...`.
 * ioredis' ready check sends a bare `INFO`: refused under these rules, ioredis logs "Skipping the ready check"
 * (console.warn, per connection) and goes on; `+info` instead of `+info|replication` (or `enableReadyCheck:
 * false`) silences it.
 */
export function storeAclRules(prefix = STORE_PREFIX): string[] {
  const grant = (command: string): string => (command === 'info' ? '+info|replication' : `+${command}`);
  return [`~${prefix}*`, `&${prefix}*`, '-@all', ...STORE_COMMANDS.map(grant)];
}
