import { fork, type ChildProcess } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import type { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { LOCK_LEASE_MS } from '../../lib/internal.constants';
import { builtPackage, repoRoot } from '../support/built-package';

/**
 * A fleet of real processes sharing (or not) one token, for the tests of issue 11: N children, each a Nest
 * application context of the built package with C callers asking for the token in a loop, against ONE
 * FakeTransferServer in the parent (the Jest worker). The parent sees every request the fake receives
 * (`http.server.request.start`), each child says which local port each of its upstream requests left from,
 * so every upstream request is attributed to the process that sent it.
 */

export type ClientKind = 'ioredis' | 'ioredis-v6' | 'node-redis' | 'redis-v6' | 'cluster' | 'ioredis-sentinel' | 'none';

export interface FleetOptions {
  /** The app's Redis client in each child; `none`: no store at all (the per-process default). */
  client: ClientKind;
  /** For 'ioredis', 'ioredis-v6', 'node-redis', 'redis-v6' (node-redis 6, RESP3 by default). */
  redisUrl?: string;
  /** For 'cluster'. */
  clusterNodes?: { host: string; port: number }[];
  /** For 'ioredis-sentinel': `new Redis({ sentinels, name: sentinelName })` (see startSentinelTopology). */
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  /** Callers per process. */
  callers: number;
  /** The module's `requestTimeoutMs`. @default 1000 */
  requestTimeoutMs?: number;
  /** Each caller waits 0..paceMs (random, real time) between calls. @default 20 */
  paceMs?: number;
  /** The compiled package the children load. @default builtPackage(): lib/ as it is */
  pkg?: string;
  /** The secret the children send. @default the fake's */
  agentSecret?: string;
  /** `agentSecret` as a provider (with the store's own `encryptionKey`). */
  secretProvider?: boolean;
  /** @default true */
  fetchOnStartup?: boolean;
  /** A child is ready once it served its first token (default), or at once after init (`false`). */
  waitForToken?: boolean;
  /** Each caller waits exactly this long between calls (instead of 0..paceMs). */
  fixedPaceMs?: number;
}

/** What a child reports when it stops. */
export interface WorkerReport {
  /** Each distinct token it handed out, with the first and the last wall-clock time (epoch ms) a caller got it. */
  tokens: [token: string, first: number, last: number][];
  /** The longest any `getAccessToken()` took. */
  maxLatencyMs: number;
  /** Rejected calls by error code. */
  errors: Record<string, number>;
  calls: number;
  /** Requests it sent to the fake. */
  upstream: number;
}

interface UpstreamSent {
  localPort: number;
  at: number;
  path: string;
}

export interface Ready {
  firstTokenMs: number;
  /** From creating the application context (init: the startup fetch, or adopting a stored token) to its first token. */
  startMs: number;
  upstream: number;
}

/** One request the fake received, as its HTTP server saw it. */
export interface ReceivedRequest {
  at: number;
  remotePort: number;
  method: string;
  status: number | 'aborted' | 'pending';
}

const WORKER = join(repoRoot(), 'test', 'fleet', 'fleet-worker.js'); // also from bench-dist/
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Children die with the parent: on its exit, and (in the child) when the IPC channel closes. The hook goes
 * on the real `process`: a Jest test file's own copy never runs its 'exit' listeners.
 */
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    (runInThisContext('process') as NodeJS.Process).on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what()}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class FleetWorker {
  readonly child: ChildProcess;
  /** What the child wrote to stderr: its Nest warnings and errors. */
  stderr = '';
  readonly upstream: UpstreamSent[] = [];
  readonly ready: Promise<Ready>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  killedAt: number | undefined;
  private readonly report: Promise<WorkerReport>;
  private readonly answers = new Map<string, ((message: Record<string, unknown>) => void)[]>();

  constructor(
    readonly id: number,
    config: Record<string, unknown>,
  ) {
    this.child = fork(WORKER, [JSON.stringify({ ...config, id })], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    track(this.child);
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    // 'close', not 'exit': a child that sends its report and exits at once may be seen to exit before its
    // last IPC message is read; 'close' comes after its pipes (the IPC channel too) are drained.
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
    const failed = this.exited.then(({ code, signal }) => {
      throw new Error(`worker ${id} exited (${code ?? signal}) before answering:\n${this.stderr}`);
    });
    failed.catch(() => undefined);
    this.ready = Promise.race([this.answer('ready') as Promise<unknown> as Promise<Ready>, failed]);
    this.report = Promise.race([this.answer('report') as Promise<unknown> as Promise<WorkerReport>, failed]);
    this.ready.catch(() => undefined);
    this.report.catch(() => undefined);
    this.child.on('message', (message: Record<string, unknown>) => {
      if (message.type === 'upstream') return void this.upstream.push(message as unknown as UpstreamSent);
      if (message.type === 'fatal') this.stderr += `[fatal] ${String(message.message)}\n`;
      const waiting = this.answers.get(String(message.type));
      waiting?.shift()?.(message);
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.killedAt === undefined;
  }

  /** The token its callers got last. */
  async current(): Promise<string> {
    const answer = this.answer('current');
    this.child.send('current');
    return String((await withTimeout(answer, 5_000, () => `worker ${this.id} current`)).token);
  }

  /** `auth.getStatus()` in the child (dates as ISO strings). */
  async status(): Promise<Record<string, unknown>> {
    const answer = this.answer('status');
    this.child.send('status');
    return (await withTimeout(answer, 5_000, () => `worker ${this.id} status`)).status as Record<string, unknown>;
  }

  /** `auth.invalidate(current)` in the child, as after a 401; resolves the token it dropped. */
  async invalidate(): Promise<string> {
    const answer = this.answer('invalidated');
    this.child.send('invalidate');
    return String((await withTimeout(answer, 5_000, () => `worker ${this.id} invalidate`)).token);
  }

  /** Stops its callers, closes its app and client; resolves what it measured. */
  async stop(): Promise<WorkerReport> {
    this.child.send('stop');
    const report = await withTimeout(this.report, 30_000, () => `worker ${this.id} stop:\n${this.stderr}`);
    await this.exited;
    return report;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.killedAt = Date.now();
    this.child.kill(signal);
  }

  private answer(type: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const list = this.answers.get(type) ?? [];
      list.push(resolve);
      this.answers.set(type, list);
    });
  }
}

export class Fleet {
  readonly workers: FleetWorker[] = [];
  /** Every request the fake received since the fleet was created, in arrival order. */
  readonly received: ReceivedRequest[] = [];
  /** When the fleet was created (epoch ms): the origin of the printed timeline. */
  readonly t0 = Date.now();
  private readonly fakePort: number;
  private readonly onRequest = (message: unknown): void => {
    const { request, response, socket } = message as {
      request: IncomingMessage;
      response: ServerResponse;
      socket: Socket;
    };
    if (socket.localPort !== this.fakePort) return;
    const entry: ReceivedRequest = {
      at: Date.now(),
      remotePort: socket.remotePort as number,
      method: request.method ?? '?',
      status: 'pending',
    };
    this.received.push(entry);
    response.once('finish', () => (entry.status = response.statusCode));
    response.once('close', () => {
      if (entry.status === 'pending') entry.status = 'aborted';
    });
  };

  constructor(
    readonly fake: FakeTransferServer,
    readonly options: FleetOptions,
  ) {
    this.fakePort = Number(new URL(fake.url).port);
    subscribe('http.server.request.start', this.onRequest);
  }

  /** Starts `count` more processes and waits until each has served its first token. */
  async add(count: number): Promise<FleetWorker[]> {
    const config = {
      pkg: this.options.pkg ?? builtPackage(),
      baseUrl: this.fake.url,
      agentId: this.fake.agentId,
      agentSecret: this.fake.agentSecret,
      requestTimeoutMs: this.options.requestTimeoutMs ?? 1_000,
      client: this.options.client,
      redisUrl: this.options.redisUrl,
      clusterNodes: this.options.clusterNodes,
      sentinels: this.options.sentinels,
      sentinelName: this.options.sentinelName,
      callers: this.options.callers,
      paceMs: this.options.paceMs ?? 20,
      fixedPaceMs: this.options.fixedPaceMs,
      secretProvider: this.options.secretProvider === true,
      fetchOnStartup: this.options.fetchOnStartup,
      waitForToken: this.options.waitForToken,
    };
    if (this.options.agentSecret !== undefined) config.agentSecret = this.options.agentSecret;
    const added: FleetWorker[] = [];
    for (let i = 0; i < count; i++) {
      const worker = new FleetWorker(this.workers.length, config);
      this.workers.push(worker);
      added.push(worker);
    }
    // Several processes start at once (Nest, scrypt): 2 cores take a while.
    await withTimeout(Promise.all(added.map((w) => w.ready)), 60_000, () => `fleet start\n${this.stderr()}`);
    return added;
  }

  /** Stops every live process; resolves the reports of those that were not killed. */
  async stop(): Promise<WorkerReport[]> {
    const reports = await Promise.all(this.workers.filter((w) => w.alive).map((w) => w.stop()));
    this.dispose();
    return reports;
  }

  /** Kills whatever is still running (afterAll, a failed test). */
  dispose(): void {
    unsubscribe('http.server.request.start', this.onRequest);
    for (const w of this.workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  }

  /** The process that sent the request the fake received from `remotePort` around `at`. */
  sender(request: ReceivedRequest): FleetWorker | undefined {
    let best: { worker: FleetWorker; at: number } | undefined;
    for (const worker of this.workers) {
      for (const sent of worker.upstream) {
        if (sent.localPort !== request.remotePort || sent.at > request.at + 1_000) continue;
        if (best === undefined || sent.at > best.at) best = { worker, at: sent.at };
      }
    }
    return best?.worker;
  }

  /** Waits until the sender of `request` has told which port it used (IPC may trail the request). */
  async senderOf(request: ReceivedRequest): Promise<FleetWorker> {
    for (let i = 0; i < 100; i++) {
      const worker = this.sender(request);
      if (worker !== undefined) return worker;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no process claims the request from port ${request.remotePort}`);
  }

  /** Renewal requests (Get token, Refresh token) the fake received in [from, to). */
  renewals(from: number, to: number): number {
    return this.fake.requests.filter(
      (r) => (r.endpoint === 'auth' || r.endpoint === 'refresh') && r.at.getTime() >= from && r.at.getTime() < to,
    ).length;
  }

  stderr(): string {
    return this.workers
      .filter((w) => w.stderr !== '')
      .map((w) => w.stderr.trimEnd())
      .join('\n');
  }

  /** Per-process upstream counts, the fake's request timeline, the children's warnings: for a failed check. */
  evidence(): string {
    const rel = (at: number): string => `+${((at - this.t0) / 1_000).toFixed(3)}s`;
    const perProcess = this.workers
      .map(
        (w) =>
          `w${w.id}(pid ${w.pid}${w.killedAt === undefined ? '' : `, killed ${rel(w.killedAt)}`}): ${w.upstream.length}`,
      )
      .join(', ');
    const timeline = this.received.map((r) => {
      const who = this.sender(r);
      return `  ${rel(r.at)} ${who === undefined ? 'w?' : `w${who.id}`} ${r.method === 'PATCH' ? 'refresh' : r.method === 'POST' ? 'login  ' : r.method} ${r.status}`;
    });
    return [
      `upstream requests per process: ${perProcess}`,
      `fake counters: ${JSON.stringify(this.fake.calls)}`,
      'timeline (fake side):',
      ...timeline,
      'children stderr:',
      this.stderr() || '  (none)',
    ].join('\n');
  }
}

/** What a run comes to, in the numbers issue 11 asks for. */
export interface FleetFigures {
  label: string;
  processes: number;
  callers: number;
  /** The window asked for. */
  windowMs: number;
  /** Get token + Refresh token requests the fake received in the window asked for. */
  renewals: number;
  /**
   * The literal figure: renewals / (windowMs / the fake's accessTtlMs). Not what the checks use: the package
   * renews a token at its stale point, about 60% into a 3 s lifetime, so a lone process scores about 1.5.
   */
  perAccessTtl: number;
  /**
   * How long the package serves a token before it is replaced (first to last hand-out, fleet-wide), averaged
   * weighted by itself (sum of squares over sum), so that a token superseded at once barely counts.
   */
  serviceLifeMs: number;
  /** From the first renewal in the window to the last one. */
  alignedMs: number;
  /** Renewals in [first, last) of the window's renewals: whole token lifetimes, no partial one at an edge. */
  alignedRenewals: number;
  /**
   * Upstream renewals per token lifetime, fleet-wide: `alignedRenewals / (alignedMs / serviceLifeMs)`. 1 when
   * the fleet renews once each time its one token goes stale; N when N processes each renew their own.
   * Every renewal request counts (refused, lost, or superseded at once too).
   */
  perLifetime: number;
  /** Tokens in use at once, averaged over the window (time served inside it, summed, over its length). */
  tokensInUse: number;
  /** Tokens some caller got at or after the fake's expiry of it. */
  expiredHandedOut: number;
  /** Tokens handed out that the fake never issued. */
  unknownTokens: number;
  refreshReused: number;
  errors: Record<string, number>;
  callerErrors: number;
  maxWaitMs: number;
  calls: number;
  upstreamPerProcess: number[];
}

/**
 * The figures of a stopped fleet: renewals and tokens in use in [from, to) (the steady part of a run, or a
 * window after a fault); expiries, reuses, errors and waits over the whole run.
 *
 * Why renewals per lifetime is not simply renewals / (window / accessTtl): the package renews a 3 s token
 * at its stale point, 1.4 to 2.2 s after it was issued (20% margin, and up to 1 s lost to the whole-second
 * `Date` header), so one process alone makes about 1.5 renewals per 3 s. A lifetime here is how long a
 * token is served. Counting between the first and the last renewal of the window spans whole lifetimes, so
 * the figure does not jump by one renewal when a window edge falls just before or after one.
 */
export function figures(
  label: string,
  fleet: Fleet,
  reports: WorkerReport[],
  window: { from: number; to: number },
): FleetFigures {
  const { fake } = fleet;
  const { from, to } = window;
  const windowMs = to - from;
  let expiredHandedOut = 0;
  let unknownTokens = 0;
  const errors: Record<string, number> = {};
  const served = new Map<string, { first: number; last: number }>();
  for (const report of reports) {
    for (const [token, first, last] of report.tokens) {
      const expiresAt = fake.accessTokenExpiresAt(token);
      if (expiresAt === undefined) unknownTokens++;
      else if (last >= expiresAt) expiredHandedOut++;
      const seen = served.get(token);
      served.set(token, { first: Math.min(first, seen?.first ?? first), last: Math.max(last, seen?.last ?? last) });
    }
    for (const [code, count] of Object.entries(report.errors)) errors[code] = (errors[code] ?? 0) + count;
  }
  const times = fake.requests
    .filter((r) => r.endpoint === 'auth' || r.endpoint === 'refresh')
    .map((r) => r.at.getTime())
    .filter((at) => at >= from && at < to);
  const first = times[0] ?? from;
  const last = times.at(-1) ?? to;
  const aligned = times.length >= 2 ? { from: first, to: last } : { from, to };
  const alignedRenewals = times.filter((at) => at >= aligned.from && at < aligned.to).length;
  let servedMs = 0;
  let sum = 0;
  let squares = 0;
  for (const { first: a, last: b } of served.values()) {
    servedMs += Math.max(0, Math.min(b, to) - Math.max(a, from));
    if (a >= aligned.from && a < aligned.to) {
      sum += b - a;
      squares += (b - a) ** 2;
    }
  }
  const serviceLifeMs = sum > 0 ? Math.round(squares / sum) : fake.accessTtlMs;
  const alignedMs = aligned.to - aligned.from;
  return {
    label,
    processes: fleet.workers.length,
    callers: fleet.options.callers,
    windowMs,
    renewals: times.length,
    perAccessTtl: times.length / (windowMs / fake.accessTtlMs),
    serviceLifeMs,
    alignedMs,
    alignedRenewals,
    perLifetime: alignedRenewals / (alignedMs / serviceLifeMs),
    tokensInUse: servedMs / windowMs,
    expiredHandedOut,
    unknownTokens,
    refreshReused: fake.calls.refreshReused,
    errors,
    callerErrors: Object.values(errors).reduce((a, b) => a + b, 0),
    maxWaitMs: Math.max(0, ...reports.map((r) => r.maxLatencyMs)),
    calls: reports.reduce((a, r) => a + r.calls, 0),
    upstreamPerProcess: fleet.workers.map((w) => w.upstream.length),
  };
}

/** One line per run, for the closing note. */
export function summary(f: FleetFigures): string {
  return [
    f.label.padEnd(30),
    `${f.processes}x${f.callers}`.padStart(5),
    `window ${(f.windowMs / 1_000).toFixed(1)}s`,
    `renewals ${f.renewals}`,
    `per lifetime ${f.perLifetime.toFixed(2)} (${f.alignedRenewals} in ${(f.alignedMs / 1_000).toFixed(1)}s, life ${f.serviceLifeMs} ms)`,
    `per accessTtl ${f.perAccessTtl.toFixed(2)}`,
    `tokens in use ${f.tokensInUse.toFixed(2)}`,
    `expired ${f.expiredHandedOut}`,
    `reuses ${f.refreshReused}`,
    `errors ${f.callerErrors}`,
    `max wait ${Math.round(f.maxWaitMs)} ms`,
    `calls ${f.calls}`,
    `upstream/process [${f.upstreamPerProcess.join(',')}]`,
  ].join(' | ');
}

/**
 * The renewal lock's lease, read from lib/ (the constant the children run), not restated here: a dead or
 * paused holder's lock lapses within it, and the bound on a caller's wait follows it.
 */
export function lockTtlMs(): number {
  return LOCK_LEASE_MS;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
