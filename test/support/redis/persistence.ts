/**
 * A Redis that restarts from an OLDER RDB snapshot: the store "going back in time" as after a crash of a server
 * whose last dump is older than its last writes, or a restore from a backup.
 *
 * `startRedis` alone can do it (`args: ['--dir', dataDir, '--dbfilename', name]` come after the helper's own
 * `--dir` and win; `command('SAVE')`, `kill()`, `restart()` keep those args, so the restarted server loads the
 * dump), but then nobody removes `dataDir` and `RedisProcess.dir` names the (unused) per-process temp dir. This
 * wraps that: a data dir that outlives each server process, removed with `stop()` or when the host exits.
 */
import { copyFile, mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeOnExit, startRedis, type RedisProcess } from './redis-server';

export interface RedisWithDumpOptions {
  /** The data dir (`--dir`). @default a fresh temp dir, removed by `stop()` (and when the host exits) */
  dir?: string;
  /** `--dbfilename`. @default 'dump.rdb' */
  dbfilename?: string;
  /** @default a free port */
  port?: number;
  /** More `redis-server` args (e.g. `['--appendonly', 'yes']`: then a restart loads the AOF instead). */
  args?: string[];
}

/** A `RedisProcess` whose data dir survives `kill()` / `restart()`. Automatic saves stay off (`save ""`). */
export interface RedisWithDump extends RedisProcess {
  /** The data dir (`--dir`) the dump lives in, the same across restarts. */
  readonly dataDir: string;
  readonly dbfilename: string;
  /** `<dataDir>/<dbfilename>` */
  readonly dumpPath: string;
  /** `SAVE` now (synchronous on the server): what a restart will come back to. */
  save(): Promise<void>;
  /** `SAVE`, then a copy of the dump under `<dataDir>/snapshot-<n>.rdb`; resolves its path (for `crashToSnapshot`). */
  saveCopy(): Promise<string>;
  /**
   * SIGKILL (no save on the way out), then a restart on the same port from the dump: the last `save()`'s, or the
   * copy `snapshot` (from `saveCopy()`), written over the dump first. Writes since that snapshot are gone.
   */
  crashToSnapshot(snapshot?: string): Promise<void>;
  /** Stops the server, and removes the data dir when this helper made it. */
  stop(): Promise<void>;
}

/** Starts a server with a data dir of its own (see `RedisWithDumpOptions`). */
export async function startRedisWithDump(options: RedisWithDumpOptions = {}): Promise<RedisWithDump> {
  const dbfilename = options.dbfilename ?? 'dump.rdb';
  const owned = options.dir === undefined;
  const dataDir = options.dir ?? (await mkdtemp(join(tmpdir(), 'redis-data-')));
  if (!owned) await mkdir(dataDir, { recursive: true });
  let removeDir = owned ? removeOnExit(dataDir) : undefined;
  let redis: RedisProcess;
  try {
    redis = await startRedis({
      ...(options.port === undefined ? {} : { port: options.port }),
      args: ['--dir', dataDir, '--dbfilename', dbfilename, ...(options.args ?? [])],
    });
  } catch (error) {
    await removeDir?.();
    throw error;
  }
  const dumpPath = join(dataDir, dbfilename);
  let copies = 0;

  const save = async (): Promise<void> => {
    const reply = await redis.command('SAVE');
    if (reply !== 'OK') throw new Error(`SAVE on port ${redis.port} answered ${JSON.stringify(reply)}`);
    await stat(dumpPath); // there now
  };

  return {
    get port() {
      return redis.port;
    },
    get url() {
      return redis.url;
    },
    get pid() {
      return redis.pid;
    },
    get dir() {
      return redis.dir;
    },
    get running() {
      return redis.running;
    },
    get output() {
      return redis.output;
    },
    dataDir,
    dbfilename,
    dumpPath,
    kill: () => redis.kill(),
    pause: () => redis.pause(),
    resume: () => redis.resume(),
    command: (...args) => redis.command(...args),
    restart: async () => {
      if (owned && removeDir === undefined) {
        // After stop() removed it: an empty data dir again, removed as before.
        await mkdir(dataDir, { recursive: true });
        removeDir = removeOnExit(dataDir);
      }
      await redis.restart();
    },
    stop: async () => {
      await redis.stop();
      const remove = removeDir;
      removeDir = undefined;
      await remove?.();
    },
    save,
    saveCopy: async () => {
      await save();
      const copy = join(dataDir, `snapshot-${++copies}.rdb`);
      await copyFile(dumpPath, copy);
      return copy;
    },
    crashToSnapshot: async (snapshot) => {
      await redis.kill();
      if (snapshot !== undefined) await copyFile(snapshot, dumpPath);
      await redis.restart();
    },
  };
}
