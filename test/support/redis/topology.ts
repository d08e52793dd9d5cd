/**
 * A Sentinel-managed pair for tests: one primary, one replica (`--replicaof`) and 3 Sentinels (`redis-server
 * <conf> --sentinel`, the same binary, each with a writable config file in its own temp dir), all on free ports
 * of 127.0.0.1, started through `startRedis` so they die with the hosting process (the Jest worker) like every
 * other server of redis-server.ts.
 */
import { startRedis, type RedisProcess } from './redis-server';
import { fields, infoFields, RespError, sendCommand, type RespValue } from './resp';

export interface SentinelTopologyOptions {
  /** @default 'mymaster' */
  masterName?: string;
  /** `sentinel down-after-milliseconds`: how long a dead primary goes unnoticed. @default 1000 */
  downAfterMs?: number;
  /** `sentinel failover-timeout`. @default 5000 */
  failoverTimeoutMs?: number;
  /** Sentinels that must agree the primary is down (3 Sentinels run). @default 2 */
  quorum?: number;
  /** How long the start, and each wait, may take. @default 20000 */
  timeoutMs?: number;
}

/** A running topology. `primary` and `replica` follow the roles: after `failover()` they have swapped. */
export interface SentinelTopology {
  readonly masterName: string;
  /** For `new Redis({ sentinels, name: masterName })`. */
  readonly sentinels: { host: string; port: number }[];
  /** The Sentinel processes (e.g. to kill one). */
  readonly sentinelProcesses: readonly RedisProcess[];
  /** Both data nodes, in the order they were started (first primary, first replica). */
  readonly nodes: readonly [RedisProcess, RedisProcess];
  /** The node the Sentinels last reported as master (as far as this object has seen). */
  readonly primary: RedisProcess;
  /** The other data node. */
  readonly replica: RedisProcess;
  /** How long the start took and the last `failover()` took (ms). */
  readonly timings: { startMs: number; lastFailoverMs?: number };
  /**
   * `SENTINEL FAILOVER <name>` (retried while the Sentinels have no good replica yet or another failover is in
   * progress), resolved once every Sentinel reports the former replica as master. The former primary is not
   * waited for: Sentinel turns it into a replica later (up to ~10 s, its INFO period); `waitForReplication()`
   * waits for that.
   */
  failover(): Promise<void>;
  /** Resolves once every Sentinel reports `node` as master and the node says `role:master`; roles follow it. */
  waitForMaster(node: RedisProcess): Promise<void>;
  /**
   * Resolves once the replica replicates the primary (link up, no sync in progress, same offset) and every
   * Sentinel knows it as a healthy replica of it: what a (next) failover needs.
   */
  waitForReplication(): Promise<void>;
  /** Stops the Sentinels, then the data nodes. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const SENTINELS = 3;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (which returns undefined when satisfied, else why not) until it passes or `timeoutMs` is over. */
async function until(what: string, timeoutMs: number, check: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let why: string | undefined = 'not checked';
  for (;;) {
    why = await check().catch((error: unknown) => `error: ${(error as Error).message}`);
    if (why === undefined) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (${why})`);
    await sleep(50);
  }
}

async function info(node: RedisProcess, section: string): Promise<Record<string, string>> {
  return infoFields(await sendCommand(node.port, ['INFO', section], { timeoutMs: 2_000 }));
}

function sentinelConfig(name: string, primaryPort: number, options: Required<SentinelTopologyOptions>): string {
  return [
    `sentinel monitor ${name} ${HOST} ${primaryPort} ${options.quorum}`,
    `sentinel down-after-milliseconds ${name} ${options.downAfterMs}`,
    `sentinel failover-timeout ${name} ${options.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${name} 1`,
    '',
  ].join('\n');
}

/**
 * Starts the primary, the replica and 3 Sentinels, and resolves once the replica is in sync and every Sentinel
 * knows the primary as master, the replica as a healthy replica, and the 2 other Sentinels.
 */
export async function startSentinelTopology(options: SentinelTopologyOptions = {}): Promise<SentinelTopology> {
  const settings: Required<SentinelTopologyOptions> = {
    masterName: options.masterName ?? 'mymaster',
    downAfterMs: options.downAfterMs ?? 1_000,
    failoverTimeoutMs: options.failoverTimeoutMs ?? 5_000,
    quorum: options.quorum ?? 2,
    timeoutMs: options.timeoutMs ?? 20_000,
  };
  const name = settings.masterName;
  const startedAt = performance.now();
  const started: RedisProcess[] = [];
  const sentinelProcesses: RedisProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(sentinelProcesses.map((sentinel) => sentinel.stop()));
      await Promise.all(started.map((node) => node.stop()));
    })());

  try {
    // No 5 s wait for more replicas before a (diskless) full sync, on either node: both may be primary.
    const nodeArgs = ['--repl-diskless-sync-delay', '0'];
    const first = await startRedis({ args: nodeArgs });
    started.push(first);
    const second = await startRedis({ args: [...nodeArgs, '--replicaof', HOST, String(first.port)] });
    started.push(second);
    const nodes = [first, second] as const;
    let primary: RedisProcess = first;
    const other = (node: RedisProcess): RedisProcess => (node === first ? second : first);

    // A restarted Sentinel monitors whichever node is primary by then.
    const config = (): string => sentinelConfig(name, primary.port, settings);
    for (let i = 0; i < SENTINELS; i++) {
      sentinelProcesses.push(await startRedis({ config, args: ['--sentinel'] }));
    }

    const sentinel = (s: RedisProcess, ...args: string[]): Promise<Exclude<RespValue, RespError>> =>
      sendCommand(s.port, ['SENTINEL', ...args], { timeoutMs: 2_000 });

    const waitForReplication = async (): Promise<void> => {
      const replica = other(primary);
      await until(
        `${name}: replica ${replica.port} in sync with primary ${primary.port}`,
        settings.timeoutMs,
        async () => {
          const r = await info(replica, 'replication');
          if (r['role'] !== 'slave' || r['master_port'] !== String(primary.port))
            return `replica role ${r['role']} of ${r['master_port']}`;
          if (r['master_link_status'] !== 'up' || r['master_sync_in_progress'] !== '0')
            return `link ${r['master_link_status']}, sync in progress ${r['master_sync_in_progress']}`;
          const p = await info(primary, 'replication');
          if (p['role'] !== 'master') return `primary role ${p['role']}`;
          const entry = Object.entries(p).find(([k, v]) => /^slave\d+$/.test(k) && v.includes(`port=${replica.port},`));
          if (entry === undefined) return 'replica not listed by the primary';
          const state = /state=(\w+)/.exec(entry[1])?.[1];
          if (state !== 'online') return `replica state ${state}`;
          for (const s of sentinelProcesses) {
            const replicas = await sentinel(s, 'REPLICAS', name);
            const known = (Array.isArray(replicas) ? replicas : [])
              .map(fields)
              .find((f) => f['port'] === String(replica.port));
            if (known === undefined) return `sentinel ${s.port} does not know the replica`;
            if (
              known['flags'] !== 'slave' ||
              known['master-link-status'] !== 'ok' ||
              known['master-port'] !== String(primary.port)
            )
              return `sentinel ${s.port} sees the replica as ${known['flags']}, link ${known['master-link-status']}, of ${known['master-port']}`;
          }
          return undefined;
        },
      );
    };

    const waitForMaster = async (node: RedisProcess): Promise<void> => {
      await until(`${name}: every sentinel reports ${node.port} as master`, settings.timeoutMs, async () => {
        for (const s of sentinelProcesses) {
          const address = await sentinel(s, 'GET-MASTER-ADDR-BY-NAME', name);
          if (!Array.isArray(address) || address[1] !== String(node.port))
            return `sentinel ${s.port} says ${JSON.stringify(address)}`;
        }
        const role = await info(node, 'replication');
        return role['role'] === 'master' ? undefined : `${node.port} has role ${role['role']}`;
      });
      primary = node;
    };

    // Every Sentinel knows the master, the 2 others, and the replica in sync.
    await until(`${name}: sentinels agree on the master`, settings.timeoutMs, async () => {
      for (const s of sentinelProcesses) {
        const master = fields(await sentinel(s, 'MASTER', name));
        if (master['flags'] !== 'master' || master['port'] !== String(first.port))
          return `sentinel ${s.port}: master ${master['port']} flags ${master['flags']}`;
        if (master['num-other-sentinels'] !== String(SENTINELS - 1))
          return `sentinel ${s.port} knows ${master['num-other-sentinels']} other sentinels`;
        if (master['num-slaves'] !== '1') return `sentinel ${s.port} knows ${master['num-slaves']} replicas`;
      }
      return undefined;
    });
    await waitForReplication();

    const timings: { startMs: number; lastFailoverMs?: number } = { startMs: performance.now() - startedAt };
    return {
      masterName: name,
      sentinels: sentinelProcesses.map((s) => ({ host: HOST, port: s.port })),
      sentinelProcesses,
      nodes,
      get primary() {
        return primary;
      },
      get replica() {
        return other(primary);
      },
      timings,
      failover: async () => {
        const from = performance.now();
        const target = other(primary);
        const deadline = Date.now() + settings.timeoutMs;
        for (;;) {
          try {
            await sentinel(sentinelProcesses[0]!, 'FAILOVER', name);
            break;
          } catch (error) {
            // No replica the Sentinel deems good yet, or the previous failover not over: try again.
            const retry = error instanceof RespError && (error.code === 'NOGOODSLAVE' || error.code === 'INPROG');
            if (!retry || Date.now() > deadline) throw error;
            await sleep(100);
          }
        }
        await waitForMaster(target);
        timings.lastFailoverMs = performance.now() - from;
      },
      waitForMaster,
      waitForReplication,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
