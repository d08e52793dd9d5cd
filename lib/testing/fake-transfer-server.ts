import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { MAX_RESPONSE_BYTES } from '../internal.constants';
import { bearerToken, fakeRoutes, methodsAt, parseObject, routeRequest, type FakeRoutes } from './fake-routes';
import type {
  FakeCallCounters,
  FakeEndpoint,
  FakeFault,
  FakeFaultPolicy,
  FakeRequestRecord,
  FakeTransferServerOptions,
} from './fake-transfer-server.types';

interface Issued {
  expiresAt: number;
  revoked: boolean;
  /** The login this token descends from: every pair a refresh chain issues shares its login's family. */
  family: number;
}

/** A refresh token that has served a refresh: until when it is remembered, and its family. */
interface Used {
  expiresAt: number;
  family: number;
}

interface QueuedFault {
  endpoint: FakeEndpoint | 'any';
  fault: FakeFault;
  times: number;
}

interface CallWaiter {
  done: () => boolean;
  resolve: () => void;
  reject: (error: Error) => void;
  count: number;
  endpoint: keyof FakeCallCounters;
}

/**
 * An in-process fake of Freedom Pay's Transfer auth endpoints, on a real loopback socket: Get token,
 * Refresh token (rotating the pair), and the protected `GET /v5/partner/transfer/agents`. It keeps
 * counters, can run its clock ahead or behind, rotate its agent secret ({@link setAgentSecret}), and
 * injects faults. Use it to test your own code:
 *
 * ```ts
 * const fake = await new FakeTransferServer().start();
 * TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url });
 * // ...
 * await fake.stop();
 * ```
 *
 * Give it the same `authPath` and `refresh` options as the module: it serves Refresh token where the
 * module sends it (by method and path, and by the refresh token a request carries when a refresh is a
 * `POST` on the auth path).
 */
export class FakeTransferServer {
  readonly agentId: string;
  /** Lifetime of access tokens issued from now on. */
  accessTtlMs: number;
  /** Lifetime of refresh tokens issued from now on. */
  refreshTtlMs: number;
  /** The fake's clock runs this far ahead of the local one (negative: behind). */
  clockOffsetMs: number;
  /** Every request received, oldest first. */
  readonly requests: FakeRequestRecord[] = [];
  /** Requests per endpoint, and reused refresh tokens. */
  readonly calls: FakeCallCounters = { auth: 0, refresh: 0, agents: 0, unknown: 0, total: 0, refreshReused: 0 };
  /**
   * Consulted for every request to a known endpoint that no queued fault ({@link failNext}) applies
   * to: the fault it returns is applied, `undefined` answers normally. Cleared by {@link clearFaults}.
   */
  faultPolicy: FakeFaultPolicy | undefined;

  /** What Get token accepts now: see {@link agentSecret} and {@link setAgentSecret}. */
  private secret: string;
  private readonly routes: FakeRoutes;
  private readonly agents: unknown;
  private readonly accessTokens = new Map<string, Issued>();
  private readonly refreshTokens = new Map<string, Issued>();
  /**
   * Refresh tokens that have served a refresh: SHA-256 of the token to its refresh expiry. Kept apart
   * from `refreshTokens` so that reuse is still recognised once {@link forgetExpiredTokens} has dropped
   * the token itself; an entry is dropped in turn once past that expiry.
   */
  private readonly usedRefreshTokens = new Map<string, Used>();
  private readonly strictRefresh: boolean;
  private readonly revokeFamilyOnReuse: boolean;
  /** The family of the next login's pair. */
  private nextFamily = 1;
  private readonly faults: QueuedFault[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly pending = new Set<NodeJS.Timeout>();
  private readonly callWaiters = new Set<CallWaiter>();
  private server: Server | undefined;
  private baseUrl: string | undefined;
  /** The `start()` under way: concurrent calls share it, and with it one server. */
  private starting: Promise<this> | undefined;
  /** The `stop()` under way: concurrent calls share it. */
  private stopping: Promise<void> | undefined;
  /** Stopped since the last start: `url` throws, waiters are rejected. */
  private stopped = false;

  constructor(options: FakeTransferServerOptions = {}) {
    this.agentId = options.agentId ?? 'fake-agent';
    this.secret = options.agentSecret ?? `fake-secret-${randomBytes(12).toString('hex')}`;
    this.accessTtlMs = options.accessTtlMs ?? 3_600_000;
    this.refreshTtlMs = options.refreshTtlMs ?? 86_400_000;
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
    this.strictRefresh = options.strictRefresh ?? true;
    this.revokeFamilyOnReuse = options.revokeFamilyOnReuse ?? false;
    this.routes = fakeRoutes(options);
    this.agents = options.agents ?? { data: [{ id: 1, agent_id: this.agentId, name: 'Fake agent', currency: 'KZT' }] };
  }

  /**
   * Starts listening on 127.0.0.1 (`port` 0 or none: any free port). Resolves to the server itself.
   * Calls made while it is starting or listening share the one server (and ignore their `port`); after
   * {@link stop} it can be started again, on a new port unless one is given.
   */
  async start(port = 0): Promise<this> {
    if (this.stopping) await this.stopping;
    if (this.server) return this;
    this.starting ??= this.listen(port).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /**
   * Closes every connection (hanging ones included) and stops listening; a start under way is finished
   * first, then stopped. Afterwards {@link url} throws and pending {@link waitForCalls} reject.
   */
  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.stopping) return this.stopping;
    const server = this.server;
    this.server = undefined;
    this.baseUrl = undefined;
    this.stopped = true;
    for (const timer of this.pending) clearTimeout(timer);
    this.pending.clear();
    for (const socket of this.sockets) socket.destroy();
    for (const waiter of this.callWaiters) {
      waiter.reject(
        new Error(
          `FakeTransferServer stopped before calls.${waiter.endpoint} reached ${waiter.count} (it is ${this.calls[waiter.endpoint]}).`,
        ),
      );
    }
    this.callWaiters.clear();
    if (server === undefined) return;
    this.stopping = new Promise<void>((resolve) => server.close(() => resolve())).finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  /** The agent secret Get token accepts now: the `agentSecret` option, or the last {@link setAgentSecret}. */
  get agentSecret(): string {
    return this.secret;
  }

  /**
   * Rotates the agent secret, as the upstream's operators would: from the next request on, Get token
   * accepts `secret` only and answers 401 to the one before. Tokens already issued stay valid (revoke
   * them with {@link revokeAccessTokens} and {@link revokeRefreshTokens} if the test needs that). Throws
   * on an empty or non-string secret.
   *
   * ```ts
   * fake.setAgentSecret('rotated-secret'); // the app's agentSecret provider must now answer it
   * ```
   */
  setAgentSecret(secret: string): this {
    if (typeof secret !== 'string' || secret === '') {
      throw new TypeError('FakeTransferServer.setAgentSecret() expects a non-empty string.');
    }
    this.secret = secret;
    return this;
  }

  /** `http://127.0.0.1:<port>`: pass it as the module's `baseUrl`. Throws unless the fake is listening. */
  get url(): string {
    if (this.baseUrl === undefined) {
      throw new Error(
        this.stopped
          ? 'FakeTransferServer is stopped: it has no url until it is started again.'
          : 'FakeTransferServer is not started: await start() first.',
      );
    }
    return this.baseUrl;
  }

  /** The fake's current time (local time plus `clockOffsetMs`). */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Applies `fault` to the next `times` requests to `endpoint` (`any`: whichever comes). */
  failNext(endpoint: FakeEndpoint | 'any', fault: FakeFault, times = 1): this {
    this.faults.push({ endpoint, fault, times });
    return this;
  }

  /** Applies `fault` to every request to `endpoint` until {@link clearFaults}. */
  failAlways(endpoint: FakeEndpoint | 'any', fault: FakeFault): this {
    return this.failNext(endpoint, fault, Number.POSITIVE_INFINITY);
  }

  /** Removes every pending fault, and the {@link faultPolicy}. */
  clearFaults(): this {
    this.faults.length = 0;
    this.faultPolicy = undefined;
    return this;
  }

  /**
   * Resolves once `calls[endpoint]` (default: `total`) reaches `count`: e.g. to act while the client's
   * request is known to be in flight. Counted when the request body has arrived, before any fault
   * (`refreshReused`: when the refresh is answered).
   * Rejects when the fake is stopped first (or already is, and the count is not reached).
   */
  waitForCalls(count: number, endpoint: keyof FakeCallCounters = 'total'): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: CallWaiter = { done: () => this.calls[endpoint] >= count, resolve, reject, count, endpoint };
      if (waiter.done()) return resolve();
      if (this.stopped) {
        return reject(new Error(`FakeTransferServer is stopped: calls.${endpoint} cannot reach ${count}.`));
      }
      this.callWaiters.add(waiter);
    });
  }

  /** Makes every refresh token issued so far unusable (as if revoked upstream). */
  revokeRefreshTokens(): this {
    for (const issued of this.refreshTokens.values()) issued.revoked = true;
    return this;
  }

  /** Makes every access token issued so far unusable: the agents endpoint answers 401 to them. */
  revokeAccessTokens(): this {
    for (const issued of this.accessTokens.values()) issued.revoked = true;
    return this;
  }

  /** Whether the agents endpoint would accept `token` now. */
  isAccessTokenValid(token: string): boolean {
    return this.usable(this.accessTokens.get(token));
  }

  /**
   * When (epoch ms, on the fake's clock: see {@link now}) the access token `token` expires, revoked or
   * not; `undefined` if the fake never issued it or has forgotten it. It matches the `access_expire_at`
   * the fake answered with the token.
   */
  accessTokenExpiresAt(token: string): number | undefined {
    return this.accessTokens.get(token)?.expiresAt;
  }

  /**
   * Where the refresh token `token` stands now: `unused`; `used` once it has served a refresh (this wins
   * over `revoked`; with `strictRefresh: false` a used token is still accepted unless revoked); `revoked`
   * ({@link revokeRefreshTokens}); `expired`; `undefined` if the fake never issued it or has forgotten it
   * ({@link forgetExpiredTokens}: a used one is remembered until its expiry, others once unusable).
   */
  refreshTokenState(token: string): 'unused' | 'used' | 'revoked' | 'expired' | undefined {
    const issued = this.refreshTokens.get(token);
    const usedUntil = this.usedRefreshTokens.get(digest(token))?.expiresAt;
    const expiresAt = issued?.expiresAt ?? usedUntil;
    if (expiresAt === undefined) return undefined;
    if (this.now() >= expiresAt) return 'expired';
    if (usedUntil !== undefined) return 'used';
    return issued?.revoked === true ? 'revoked' : 'unused';
  }

  /** Every access and refresh token issued so far (for tests that check nothing leaks them). */
  issuedTokens(): string[] {
    return [...this.accessTokens.keys(), ...this.refreshTokens.keys()];
  }

  /**
   * Forgets every access and refresh token that is expired, revoked, or (under `strictRefresh`) used:
   * they stay unusable, so that a long-running fake does not grow; {@link issuedTokens} then lists only
   * the remembered ones. Returns how many were forgotten. A used refresh token leaves a hash behind until
   * its refresh expiry, so its reuse is still refused and counted; past that expiry the hash goes too,
   * and a reuse is answered as an unknown token (401, not counted), as it would have been when expired.
   */
  forgetExpiredTokens(): number {
    let forgotten = 0;
    for (const tokens of [this.accessTokens, this.refreshTokens]) {
      for (const [token, issued] of tokens) {
        if (this.usable(issued) && !(tokens === this.refreshTokens && this.usedUp(token))) continue;
        tokens.delete(token);
        forgotten++;
      }
    }
    const now = this.now();
    for (const [hash, used] of this.usedRefreshTokens) {
      if (now >= used.expiresAt) this.usedRefreshTokens.delete(hash);
    }
    return forgotten;
  }

  /** Zeroes the counters and forgets the recorded requests. */
  resetCounters(): this {
    Object.assign(this.calls, { auth: 0, refresh: 0, agents: 0, unknown: 0, total: 0, refreshReused: 0 });
    this.requests.length = 0;
    return this;
  }

  private async listen(port: number): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.stopped = false;
    return this;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0] as string;
      const endpoint = routeRequest(this.routes, req.method ?? 'GET', path, req.headers, body);
      const record: FakeRequestRecord = {
        endpoint,
        method: req.method ?? 'GET',
        path,
        headers: { ...req.headers },
        body,
        status: 'fault',
        at: new Date(),
      };
      this.requests.push(record);
      this.calls[endpoint]++;
      this.calls.total++;
      this.wakeWaiters();
      const fault = endpoint === 'unknown' ? undefined : (this.takeFault(endpoint) ?? this.faultPolicy?.(endpoint));
      if (fault?.holdMs !== undefined && fault.holdMs > 0) {
        // Held, then handled as usual, unless the client gave up meanwhile.
        return void this.later(fault.holdMs, () => {
          if (!req.socket.destroyed) this.respond(endpoint, req, res, body, record, fault);
        });
      }
      this.respond(endpoint, req, res, body, record, fault);
    });
  }

  private respond(
    endpoint: FakeEndpoint | 'unknown',
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
    record: FakeRequestRecord,
    fault: FakeFault | undefined,
  ): void {
    const answer = (): void => {
      const [status, payload, extra] = this.answer(endpoint, req, body, record.path);
      record.status = status;
      if (fault?.kind === 'fields') {
        const merged: Record<string, unknown> = { ...(payload as Record<string, unknown>) };
        for (const [key, value] of Object.entries(fault.fields)) {
          if (value === undefined) delete merged[key];
          else merged[key] = value;
        }
        return this.send(res, status, JSON.stringify(merged));
      }
      if (fault?.kind === 'slow-body') return this.drip(res, status, JSON.stringify(payload), fault.ms);
      if (fault?.kind === 'reset-mid-body') {
        const text = JSON.stringify(payload);
        res.writeHead(status, this.headers({ 'Content-Length': String(Buffer.byteLength(text)) }));
        res.write(text.slice(0, Math.floor(text.length / 2)));
        return void this.later(10, () => res.destroy());
      }
      this.send(res, status, JSON.stringify(payload), extra);
    };
    if (fault === undefined || fault.kind === 'fields' || fault.kind === 'slow-body' || fault.kind === 'reset-mid-body')
      return answer();
    switch (fault.kind) {
      case 'status': {
        const extra: Record<string, string> = { ...fault.headers };
        if (fault.retryAfter !== undefined) extra['Retry-After'] = String(fault.retryAfter);
        record.status = fault.status;
        return this.send(
          res,
          fault.status,
          fault.body ?? JSON.stringify({ message: `fault: HTTP ${fault.status}` }),
          extra,
        );
      }
      case 'delay':
        return void this.later(fault.ms, answer);
      case 'hang':
        return;
      case 'reset':
        return void req.socket.destroy();
      case 'body':
        record.status = fault.status ?? 200;
        return this.send(res, fault.status ?? 200, fault.body, {
          'Content-Type': fault.contentType ?? 'application/json',
        });
      case 'oversized': {
        const size = fault.bytes ?? MAX_RESPONSE_BYTES + 1;
        const [, payload] = this.answer(endpoint, req, body, record.path);
        const text = JSON.stringify({ ...(payload as object), padding: '' });
        record.status = 200;
        return this.send(
          res,
          200,
          text.replace('"padding":""', `"padding":"${'x'.repeat(Math.max(0, size - text.length))}"`),
        );
      }
      case 'redirect':
        record.status = fault.status ?? 302;
        return this.send(res, fault.status ?? 302, '', { Location: fault.location });
    }
  }

  private takeFault(endpoint: FakeEndpoint): FakeFault | undefined {
    const index = this.faults.findIndex((f) => f.endpoint === endpoint || f.endpoint === 'any');
    if (index < 0) return undefined;
    const queued = this.faults[index] as QueuedFault;
    if (--queued.times <= 0) this.faults.splice(index, 1);
    return queued.fault;
  }

  private answer(
    endpoint: FakeEndpoint | 'unknown',
    req: IncomingMessage,
    body: string,
    path: string,
  ): [number, unknown, Record<string, string>?] {
    switch (endpoint) {
      case 'auth': {
        const json = parseObject(body);
        if (json === undefined) return [400, { message: 'body must be a JSON object' }];
        const keys = Object.keys(json).sort().join(',');
        if (keys !== 'agent_id,agent_secret') return [400, { message: 'expected exactly agent_id and agent_secret' }];
        if (json['agent_id'] !== this.agentId || json['agent_secret'] !== this.secret) {
          return [401, { message: 'invalid agent credentials' }];
        }
        return [200, this.issuePair(this.nextFamily++)];
      }
      case 'refresh': {
        const tokenIn = this.routes.refresh === false ? 'both' : this.routes.refresh.tokenIn;
        const header = bearerToken(req.headers);
        const fromBody = parseObject(body)?.['refresh_token'];
        const wantHeader = tokenIn !== 'body';
        const wantBody = tokenIn !== 'header';
        if ((wantHeader && header === undefined) || (wantBody && typeof fromBody !== 'string')) {
          return [400, { message: `refresh token expected in ${tokenIn}` }];
        }
        const token = (wantHeader ? header : fromBody) as string;
        if (wantHeader && wantBody && header !== fromBody) return [400, { message: 'header and body disagree' }];
        return this.refresh(token);
      }
      case 'agents': {
        const token = bearerToken(req.headers);
        if (token === undefined || !this.usable(this.accessTokens.get(token)))
          return [401, { message: 'invalid or expired token' }];
        return [200, this.agents];
      }
      default: {
        // A path the fake serves, with another method: 405 and the methods it takes, as web frameworks do.
        const allowed = methodsAt(this.routes, path);
        if (allowed.length > 0) return [405, { message: 'method not allowed' }, { Allow: allowed.join(', ') }];
        return [404, { message: 'not found' }];
      }
    }
  }

  /**
   * Rotation: a refresh token is good for one refresh. A reuse (of a token already used, before its
   * expiry) is counted, then refused, or under `strictRefresh: false` served like a first use.
   */
  private refresh(token: string): [number, unknown] {
    const issued = this.refreshTokens.get(token);
    const hash = digest(token);
    const used = this.usedRefreshTokens.get(hash);
    if (used !== undefined && this.now() < used.expiresAt) {
      this.calls.refreshReused++;
      this.wakeWaiters();
      if (this.strictRefresh) {
        if (this.revokeFamilyOnReuse) this.revokeFamily(used.family);
        return [401, { message: 'refresh token already used' }];
      }
    }
    if (!this.usable(issued)) return [401, { message: 'refresh token expired or revoked' }];
    const { expiresAt, family } = issued as Issued;
    this.usedRefreshTokens.set(hash, { expiresAt, family });
    return [200, this.issuePair(family)];
  }

  /** A reuse under `revokeFamilyOnReuse`: every token of the login it descends from stops working. */
  private revokeFamily(family: number): void {
    for (const tokens of [this.accessTokens, this.refreshTokens]) {
      for (const issued of tokens.values()) if (issued.family === family) issued.revoked = true;
    }
  }

  /** Whether `token` is a refresh token that strict rotation no longer accepts: it has served a refresh. */
  private usedUp(token: string): boolean {
    return this.strictRefresh && this.usedRefreshTokens.has(digest(token));
  }

  private wakeWaiters(): void {
    for (const waiter of this.callWaiters) {
      if (!waiter.done()) continue;
      this.callWaiters.delete(waiter);
      waiter.resolve();
    }
  }

  private issuePair(family: number): Record<string, string> {
    const now = this.now();
    const access = `fake-at-${randomBytes(18).toString('base64url')}`;
    const refresh = `fake-rt-${randomBytes(18).toString('base64url')}`;
    this.accessTokens.set(access, { expiresAt: now + this.accessTtlMs, revoked: false, family });
    this.refreshTokens.set(refresh, { expiresAt: now + this.refreshTtlMs, revoked: false, family });
    return {
      access_token: access,
      refresh_token: refresh,
      access_expire_at: microseconds(now + this.accessTtlMs),
      refresh_expire_at: microseconds(now + this.refreshTtlMs),
    };
  }

  private usable(issued: Issued | undefined): boolean {
    return issued !== undefined && !issued.revoked && this.now() < issued.expiresAt;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    // Set by hand: Node's own Date header uses the real clock, and ours may run ahead, behind, or fake.
    return { 'Content-Type': 'application/json', Date: new Date(this.now()).toUTCString(), ...extra };
  }

  private send(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, this.headers({ 'Content-Length': String(Buffer.byteLength(text)), ...extra }));
    res.end(text);
  }

  private drip(res: ServerResponse, status: number, text: string, ms: number): void {
    res.writeHead(status, this.headers({ 'Content-Length': String(Buffer.byteLength(text)) }));
    const pieces = 10;
    const size = Math.ceil(text.length / pieces);
    let sent = 0;
    const step = (): void => {
      if (res.destroyed) return;
      res.write(text.slice(sent, sent + size));
      sent += size;
      if (sent >= text.length) res.end();
      else this.later(ms / pieces, step);
    };
    step();
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.pending.delete(timer);
      fn();
    }, ms);
    this.pending.add(timer);
  }
}

/** SHA-256 of a token: what the fake keeps of a used refresh token once it has forgotten the token. */
function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** `2024-10-02T10:52:21.123000Z`: the upstream's format, microseconds and all. */
function microseconds(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
