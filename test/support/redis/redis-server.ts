/**
 * Throw-away `redis-server` processes for tests: a standalone server or a small cluster on free ports, each in
 * its own temp dir, with no persistence (a restarted server is EMPTY), plus a raw `MONITOR` capture.
 *
 * Every started server is registered in a module-level set and SIGKILLed when the hosting process exits, so a
 * test that forgets `stop()` (or a crashed worker) does not leave Redis processes behind; dirs registered with
 * `removeOnExit` (a data dir that outlives one server process) are removed then too. Only Node built-ins are used
 * here, so the file can also be transpiled and run in a plain child process (the spec does that).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runInThisContext } from 'node:vm';

/** How long a server may take to answer PING after it is spawned. */
const STARTUP_TIMEOUT_MS = 10_000;
/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
const STOP_GRACE_MS = 3_000;
/** How long a restart keeps retrying when its (fixed) port cannot be bound yet. */
const REBIND_WINDOW_MS = 5_000;
/** How many fresh ports a start on a picked port tries when another process grabs the port first. */
const PICKED_PORT_ATTEMPTS = 5;
/** How long `startRedisCluster` waits for `cluster_state:ok` on every node (including `--cluster create`). */
const CLUSTER_TIMEOUT_MS = 20_000;
/** How much of a server's stdout/stderr is kept for error messages. */
const OUTPUT_TAIL_BYTES = 4096;
/** Highest port a cluster node may use: its bus port is `port + 10000`. */
const MAX_CLUSTER_PORT = 65_535 - 10_000;
/** Timeout of one `redis-cli` run from `command()`. */
const CLI_TIMEOUT_MS = 10_000;

const INSTALL_HINT = 'install Redis (e.g. apt-get install redis-server) to run the Redis tests';

/** The environment a binary is resolved in: only `PATH` (or Windows' `Path`) is read. */
export type BinaryEnv = Readonly<Record<string, string | undefined>>;

/** A started `redis-server`. The object stays valid across `restart()`; `pid` and `dir` then change. */
export interface RedisProcess {
  /** The TCP port; the same for the life of this object, restarts included. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** PID of the current (or last) server process. */
  readonly pid: number;
  /** Temp dir (`dir` config) of the current (or last) server process; removed once that process has exited. */
  readonly dir: string;
  /** Whether the current server process has not exited yet. */
  readonly running: boolean;
  /** Last 4 KiB of the current server process's stdout + stderr. */
  readonly output: string;
  /** SIGTERM, wait for exit, SIGKILL after 3 s; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit; removes the temp dir. Idempotent. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets but answers nothing until `resume()`. */
  pause(): Promise<void>;
  /** SIGCONT after `pause()`. */
  resume(): Promise<void>;
  /**
   * Starts a NEW, empty server on the same port (and with the same extra args) and waits until it answers PING.
   * Meant for after `kill()`/`stop()`; a still running server is stopped first. Retries the bind for a few seconds.
   */
  restart(): Promise<void>;
  /**
   * Runs `redis-cli -e -h 127.0.0.1 -p <port> ...args` and resolves its raw (non-tty) output without the final
   * newline, e.g. `PONG`, `OK`, `1`, `` (nil). Rejects on an error reply or when the server is unreachable.
   */
  command(...args: string[]): Promise<string>;
}

/** A cluster started by `startRedisCluster`. */
export interface RedisClusterProcess {
  /** One master per node, slots spread by `redis-cli --cluster create`. */
  readonly nodes: RedisProcess[];
  /** For `new Cluster(startupNodes)`. */
  readonly startupNodes: { host: string; port: number }[];
  /** Stops every node. Idempotent. */
  stop(): Promise<void>;
}

/** A running `MONITOR` capture. */
export interface MonitorCapture {
  /**
   * Waits until every command the server executed before this call is in the capture, closes the socket and
   * resolves the monitor output (one line per command, starting after the `+OK`). Idempotent.
   */
  stop(): Promise<string>;
}

// ---------------------------------------------------------------------------------------------------------------
// Binaries

/** Absolute path of the executable `name` in `env.PATH`, or `undefined`. */
function findOnPath(name: string, env: BinaryEnv): string | undefined {
  const path = env.PATH ?? env.Path ?? '';
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here: try the next PATH entry.
    }
  }
  return undefined;
}

function requireBinary(name: string, env: BinaryEnv): string {
  const found = findOnPath(name, env);
  if (found === undefined) throw new Error(`${name} is not on PATH: ${INSTALL_HINT}`);
  return found;
}

/** Resolves `redis-server` on `env.PATH`; throws a one-line error naming the fix when it is missing. */
export function redisServerBinary(env: BinaryEnv = process.env): string {
  return requireBinary('redis-server', env);
}

/** Resolves `redis-cli` on `env.PATH`; throws a one-line error naming the fix when it is missing. */
export function redisCliBinary(env: BinaryEnv = process.env): string {
  return requireBinary('redis-cli', env);
}

// ---------------------------------------------------------------------------------------------------------------
// Clean-up when the hosting process exits

/**
 * The real `process`. Inside a Jest test file, `process` is a sandbox copy whose `on('exit')` listeners never run
 * (checked with Jest 30), so the hooks are installed on the outer context's object instead.
 */
const hostProcess: NodeJS.Process = (() => {
  try {
    const outer: unknown = runInThisContext('process');
    if (typeof outer === 'object' && outer !== null && typeof (outer as NodeJS.Process).on === 'function') {
      return outer as NodeJS.Process;
    }
  } catch {
    // Fall back to the sandbox's process below.
  }
  return process;
})();

/** Every server process that has not exited yet, across all `RedisProcess` objects. */
const liveInstances = new Set<Instance>();
/** Dirs registered with `removeOnExit` and not released yet. */
const ownedDirs = new Set<string>();
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
let hooksInstalled = false;

/** Synchronous: SIGCONT (if paused) + SIGKILL every live server and remove its temp dir. */
function killAllSync(): void {
  for (const instance of liveInstances) {
    const pid = instance.child.pid;
    if (pid !== undefined && instance.child.exitCode === null && instance.child.signalCode === null) {
      try {
        if (instance.paused) process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    try {
      rmSync(instance.dir, { recursive: true, force: true });
    } catch {
      // Best effort while exiting.
    }
  }
  liveInstances.clear();
  for (const dir of ownedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort while exiting.
    }
  }
  ownedDirs.clear();
}

function onHostExit(): void {
  killAllSync();
}

function onHostSignal(signal: NodeJS.Signals): void {
  killAllSync();
  uninstallHooks();
  // Nobody else handles the signal: restore its default effect (terminating the process).
  if (hostProcess.listenerCount(signal) === 0) hostProcess.kill(hostProcess.pid, signal);
}

/** The hooks are only installed while servers run, so finished test files leave no listeners behind. */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  hostProcess.on('exit', onHostExit);
  for (const signal of FORWARDED_SIGNALS) hostProcess.on(signal, onHostSignal);
}

function uninstallHooks(): void {
  if (!hooksInstalled) return;
  hooksInstalled = false;
  hostProcess.off('exit', onHostExit);
  for (const signal of FORWARDED_SIGNALS) hostProcess.off(signal, onHostSignal);
}

function register(instance: Instance): void {
  liveInstances.add(instance);
  installHooks();
}

function unregister(instance: Instance): void {
  liveInstances.delete(instance);
  if (liveInstances.size === 0 && ownedDirs.size === 0) uninstallHooks();
}

/**
 * Removes `dir` (recursively) when the hosting process exits or is signalled, like the servers' own temp dirs.
 * Returns a function that removes it now and forgets it (idempotent).
 */
export function removeOnExit(dir: string): () => Promise<void> {
  ownedDirs.add(dir);
  installHooks();
  let removing: Promise<void> | undefined;
  return () =>
    (removing ??= (async () => {
      ownedDirs.delete(dir);
      if (liveInstances.size === 0 && ownedDirs.size === 0) uninstallHooks();
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    })());
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Keeps the last `limit` characters written to it. */
class OutputTail {
  private text = '';
  constructor(private readonly limit = OUTPUT_TAIL_BYTES) {}
  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the kernel considers free on 127.0.0.1 (bind port 0, read it, close). */
function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A free port `p <= 55535` whose cluster bus port `p + 10000` is free too, avoiding `taken` (both ports). */
async function pickClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    // The kernel's pick first (it knows what is free); the ephemeral range often lies above 55535, so fall back
    // to random ports below the limit.
    const port =
      attempt < 20 ? await pickFreePort() : 10_000 + Math.floor(Math.random() * (MAX_CLUSTER_PORT - 10_000 + 1));
    if (port > MAX_CLUSTER_PORT || taken.has(port) || taken.has(port + 10_000)) continue;
    if (!(await isPortFree(port)) || !(await isPortFree(port + 10_000))) continue;
    taken.add(port);
    taken.add(port + 10_000);
    return port;
  }
  throw new Error('Could not find a free port p <= 55535 with p + 10000 free for a Redis cluster node.');
}

/** One PING over a raw socket: true iff the answer starts with `+PONG`. */
function pingOnce(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\r\n')) finish(received.startsWith('+PONG'));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

function runCli(cli: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cli,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const detail = `${stderr}${stdout}`.trim() || error.message;
          reject(new Error(`redis-cli ${args.join(' ')} failed: ${detail}`));
          return;
        }
        resolve(stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout);
      },
    );
  });
}

/** The one-letter state in `/proc/<pid>/stat` (`T` = stopped), or undefined where there is no procfs. */
async function processState(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Waits (briefly) until the process is, or is no longer, stopped; a no-op without procfs. */
async function waitForStopped(pid: number, stopped: boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const state = await processState(pid);
    if (state === undefined || (state === 'T' || state === 't') === stopped || Date.now() > deadline) return;
    await sleep(2);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Server processes

/** One spawned `redis-server` process (a `RedisProcess` has one per (re)start). */
interface Instance {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly tail: OutputTail;
  /** Set on 'exit'. */
  exited: boolean;
  /** Resolves once the process has exited, its pipes are closed and its temp dir is removed. */
  readonly done: Promise<void>;
  paused: boolean;
  stopping?: Promise<void>;
}

type ArgsFor = (port: number) => string[];
/** The text of a config file for a port: written to the server's temp dir and passed as its first argument. */
type ConfigFor = ((port: number) => string) | undefined;

async function spawnInstance(binary: string, port: number, extraArgs: string[], config?: string): Promise<Instance> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
  const configArgs: string[] = [];
  if (config !== undefined) {
    const file = join(dir, 'redis.conf');
    await writeFile(file, config);
    configArgs.push(file);
  }
  const args = [
    ...configArgs,
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
    '--daemonize',
    'no',
    '--dir',
    dir,
    ...extraArgs,
  ];
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = new OutputTail();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => tail.append(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => tail.append(chunk));
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  const instance: Instance = { child, dir, tail, exited: false, done, paused: false };
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    instance.exited = true;
    unregister(instance);
    void rm(dir, { recursive: true, force: true, maxRetries: 3 })
      .catch(() => undefined)
      .then(markDone);
  };
  child.once('exit', () => {
    instance.exited = true;
    unregister(instance);
  });
  child.once('close', finish);
  child.once('error', (error) => {
    tail.append(`\n[spawn error] ${error.message}\n`);
    finish();
  });
  register(instance);
  return instance;
}

/** Waits until `instance` answers PING; false if it exited first or did not answer in time. */
async function waitUntilReady(
  instance: Instance,
  port: number,
  deadline: number,
): Promise<'ready' | 'exited' | 'timeout'> {
  for (;;) {
    if (instance.exited) return 'exited';
    if (await pingOnce(port)) return 'ready';
    if (instance.exited) return 'exited';
    if (Date.now() > deadline) return 'timeout';
    await sleep(20);
  }
}

function isBindFailure(output: string): boolean {
  return /Address already in use|EADDRINUSE|Failed listening on port/i.test(output);
}

/**
 * Spawns a server and waits for PING. With a fixed port, a bind failure is retried on that port for a few seconds
 * (a restart); otherwise a new port is picked (another process may have grabbed the free port first).
 */
async function launch(
  binary: string,
  argsFor: ArgsFor,
  port: { fixed: number } | { pick: () => Promise<number> },
  configFor?: ConfigFor,
): Promise<{ port: number; instance: Instance }> {
  const rebindDeadline = Date.now() + REBIND_WINDOW_MS;
  for (let attempt = 1; ; attempt++) {
    const chosen = 'fixed' in port ? port.fixed : await port.pick();
    const instance = await spawnInstance(binary, chosen, argsFor(chosen), configFor?.(chosen));
    const outcome = await waitUntilReady(instance, chosen, Date.now() + STARTUP_TIMEOUT_MS);
    if (outcome === 'ready') return { port: chosen, instance };

    if (outcome === 'timeout') {
      instance.child.kill('SIGCONT');
      instance.child.kill('SIGKILL');
    }
    await instance.done;
    const output = instance.tail.toString().trimEnd();
    const retry = outcome === 'exited' && isBindFailure(output);
    if (retry && 'fixed' in port && Date.now() < rebindDeadline) {
      await sleep(100);
      continue;
    }
    if (retry && !('fixed' in port) && attempt < PICKED_PORT_ATTEMPTS) continue;

    const what =
      outcome === 'timeout'
        ? `did not answer PING within ${STARTUP_TIMEOUT_MS} ms`
        : `exited during startup (code ${instance.child.exitCode}, signal ${instance.child.signalCode})`;
    throw new Error(`redis-server on 127.0.0.1:${chosen} ${what}. Output tail:\n${output || '(no output)'}`);
  }
}

class RedisServer implements RedisProcess {
  readonly url: string;

  constructor(
    readonly port: number,
    private instance: Instance,
    private readonly binary: string,
    private readonly argsFor: ArgsFor,
    private readonly configFor?: ConfigFor,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  get pid(): number {
    return this.instance.child.pid ?? -1;
  }

  get dir(): string {
    return this.instance.dir;
  }

  get running(): boolean {
    return !this.instance.exited;
  }

  get output(): string {
    return this.instance.tail.toString();
  }

  stop(): Promise<void> {
    const instance = this.instance;
    instance.stopping ??= (async () => {
      if (!instance.exited) {
        if (instance.paused) instance.child.kill('SIGCONT');
        instance.child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'timeout'>(
          (resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS)),
        );
        const result = await Promise.race([instance.done.then(() => 'done' as const), graceOver]);
        clearTimeout(timer);
        if (result === 'timeout') instance.child.kill('SIGKILL');
      }
      await instance.done;
      instance.paused = false;
    })();
    return instance.stopping;
  }

  async kill(): Promise<void> {
    const instance = this.instance;
    if (!instance.exited) instance.child.kill('SIGKILL');
    await instance.done;
    instance.paused = false;
  }

  async pause(): Promise<void> {
    const instance = this.requireRunning('pause');
    instance.child.kill('SIGSTOP');
    instance.paused = true;
    await waitForStopped(this.pid, true);
  }

  async resume(): Promise<void> {
    const instance = this.requireRunning('resume');
    instance.child.kill('SIGCONT');
    instance.paused = false;
    await waitForStopped(this.pid, false);
  }

  async restart(): Promise<void> {
    if (!this.instance.exited) await this.stop();
    await this.instance.done;
    const { instance } = await launch(this.binary, this.argsFor, { fixed: this.port }, this.configFor);
    this.instance = instance;
  }

  command(...args: string[]): Promise<string> {
    return runCli(redisCliBinary(), ['-e', '-h', '127.0.0.1', '-p', String(this.port), ...args], CLI_TIMEOUT_MS);
  }

  private requireRunning(what: string): Instance {
    if (this.instance.exited) throw new Error(`Cannot ${what} redis-server on port ${this.port}: it is not running.`);
    return this.instance;
  }
}

async function startServer(
  argsFor: ArgsFor,
  port: { fixed: number } | { pick: () => Promise<number> },
  configFor?: ConfigFor,
): Promise<RedisServer> {
  const binary = redisServerBinary();
  const started = await launch(binary, argsFor, port, configFor);
  return new RedisServer(started.port, started.instance, binary, argsFor, configFor);
}

/**
 * Starts a throw-away `redis-server` on 127.0.0.1 (a free port unless `port` is given) with no persistence, in a
 * fresh temp dir, and resolves once it answers PING. `args` are appended to the command line (they can override
 * the defaults, e.g. `['--maxmemory', '1mb']`, or `['--dir', dataDir, '--dbfilename', 'dump.rdb']` for a dump
 * that outlives the process: see persistence.ts). `config` (the text, or a function of the port) is written to
 * `<temp dir>/redis.conf` at every (re)start and passed as the first argument, before the defaults: a writable
 * config file, as `--sentinel` needs (see topology.ts).
 */
export async function startRedis(
  options: { port?: number; args?: string[]; config?: string | ((port: number) => string) } = {},
): Promise<RedisProcess> {
  const extra = options.args ?? [];
  const { config } = options;
  const configFor: ConfigFor = config === undefined ? undefined : typeof config === 'string' ? () => config : config;
  return startServer(
    () => [...extra],
    options.port === undefined ? { pick: pickFreePort } : { fixed: options.port },
    configFor,
  );
}

/**
 * Starts `masters` (at least 3) cluster-enabled servers, joins them with `redis-cli --cluster create` (no
 * replicas) and resolves once every node reports `cluster_state:ok`. A node's `restart()` gives a fresh, empty,
 * cluster-enabled node that is NOT part of the cluster (its nodes.conf went with its temp dir).
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcess> {
  if (!Number.isInteger(masters) || masters < 3)
    throw new Error(`A Redis cluster needs at least 3 masters (got ${masters}).`);
  const cli = redisCliBinary();
  const argsFor: ArgsFor = (port) => [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    `nodes-${port}.conf`,
    '--cluster-node-timeout',
    '2000',
  ];
  const taken = new Set<number>();
  const nodes: RedisServer[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startServer(argsFor, { pick: () => pickClusterPort(taken) }));

    const deadline = Date.now() + CLUSTER_TIMEOUT_MS;
    await runCli(
      cli,
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      CLUSTER_TIMEOUT_MS,
    );
    const pending = new Set(nodes);
    let lastInfo = '';
    while (pending.size > 0) {
      for (const node of [...pending]) {
        lastInfo = await node.command('CLUSTER', 'INFO').catch((error: unknown) => String(error));
        if (
          lastInfo.includes('cluster_state:ok') &&
          lastInfo.includes('cluster_slots_assigned:16384') &&
          lastInfo.includes(`cluster_known_nodes:${masters}`)
        ) {
          pending.delete(node);
        }
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        const ports = [...pending].map((node) => node.port).join(', ');
        throw new Error(
          `Redis cluster not ok within ${CLUSTER_TIMEOUT_MS} ms on port(s) ${ports}. Last CLUSTER INFO:\n${lastInfo}`,
        );
      }
      await sleep(50);
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    nodes,
    startupNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    stop: () => (stopping ??= stopAll()),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// MONITOR

/** RESP encoding of one command. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

/** Sends one command on a short-lived connection; resolves (never rejects) when answered, refused or timed out. */
function fireAndForget(port: number, command: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.once('connect', () => socket.write(command));
    socket.once('data', finish);
    socket.once('error', finish);
    socket.once('close', finish);
  });
}

/**
 * Opens a raw `MONITOR` connection to the Redis on 127.0.0.1:`port` and resolves once Redis confirmed it with
 * `+OK`; from then on everything the server executes is captured as text. `stop()` first sends an `ECHO <nonce>`
 * on a separate connection and waits (up to 2 s) until the nonce shows up, so every command executed before the
 * call is in the result; the nonce line and everything after it are cut off.
 */
export function captureMonitor(port: number): Promise<MonitorCapture> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setEncoding('utf8');
    let received = '';
    let confirmed = false;
    let closed = false;
    const waiters = new Set<() => void>();
    const notify = (): void => {
      for (const waiter of waiters) waiter();
    };
    const startTimer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`MONITOR on 127.0.0.1:${port} was not confirmed within 5000 ms (got ${JSON.stringify(received)}).`),
      );
    }, 5_000);

    socket.once('connect', () => socket.write('MONITOR\r\n'));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (!confirmed) {
        const lineEnd = received.indexOf('\r\n');
        if (lineEnd === -1) return;
        const first = received.slice(0, lineEnd);
        if (first !== '+OK') {
          clearTimeout(startTimer);
          socket.destroy();
          reject(new Error(`MONITOR on 127.0.0.1:${port} was refused: ${first}`));
          return;
        }
        confirmed = true;
        received = received.slice(lineEnd + 2);
        clearTimeout(startTimer);
        resolve({ stop });
      }
      notify();
    });
    socket.once('error', (error) => {
      if (!confirmed) {
        clearTimeout(startTimer);
        reject(new Error(`MONITOR on 127.0.0.1:${port} failed: ${error.message}`));
      }
    });
    socket.once('close', () => {
      closed = true;
      notify();
    });

    let stopping: Promise<string> | undefined;
    const stop = (): Promise<string> =>
      (stopping ??= (async () => {
        const nonce = `capture-monitor-end-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
        if (!closed) {
          const seen = new Promise<void>((done) => {
            const timer = setTimeout(finish, 2_000);
            function finish(): void {
              clearTimeout(timer);
              waiters.delete(check);
              done();
            }
            function check(): void {
              if (closed || received.includes(nonce)) finish();
            }
            waiters.add(check);
            check();
          });
          await fireAndForget(port, resp('ECHO', nonce), 2_000);
          await seen;
        }
        socket.destroy();
        const at = received.indexOf(nonce);
        return at === -1 ? received : received.slice(0, received.lastIndexOf('\n', at) + 1);
      })());
  });
}
