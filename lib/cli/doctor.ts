import type { Method } from 'axios';
import { randomBytes } from 'node:crypto';
import { AgentAuthRequestDto, RefreshTokenRequestDto } from '../dto/agent-auth-request.dto';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { RefreshHttpMethod, RefreshTokenLocation } from '../interfaces/transfer-auth-module-options.interface';
import { tokenFingerprint } from '../telemetry/fingerprint';
import { systemClock, type Clock } from '../token-lifecycle/clock';
import { AuthExchange, type RawAnswer } from '../upstream/auth-exchange';
import type { UpstreamTokenResponse } from '../upstream/token-endpoint';
import { parseAnswer, type Call } from '../upstream/upstream-answer';
import { emptyReport, type DoctorRefreshOption, type DoctorReport } from './doctor-report';

/** The most requests one run sends, whatever it finds. */
export const MAX_DOCTOR_CALLS = 25;

const METHODS: readonly RefreshHttpMethod[] = ['PATCH', 'POST', 'PUT'];
const TOKEN_FIELDS = new Set(['access_token', 'refresh_token', 'access_expire_at', 'refresh_expire_at']);

/** What the doctor needs to run: where, with which credentials, and where its progress goes. */
export interface DoctorSettings {
  readonly baseUrl: string;
  readonly authPath: string;
  readonly agentId: string;
  readonly agentSecret: string;
  readonly requestTimeoutMs: number;
  /** One line of progress (no secret or token ever reaches it: fingerprints only). */
  readonly progress: (line: string) => void;
  /** Aborts the request in flight (Ctrl+C): the run ends with what it knows. */
  readonly signal: AbortSignal;
  readonly clock?: Clock | undefined;
}

/** Why the run stopped early: the request budget is spent, or the upstream stopped answering. */
class Stop extends Error {
  constructor(readonly error: TransferAuthError | undefined) {
    super('doctor stopped');
  }
}

interface Pair {
  readonly access: string;
  readonly refresh: string;
}

interface Route {
  readonly method: RefreshHttpMethod;
  readonly path: string;
}

/** The routes where Refresh token may live, in the order they are tried. */
export function candidateRoutes(authPath: string): Route[] {
  const sibling = authPath.replace(/\/[^/]*$/, '/refresh');
  const paths = [...new Set([authPath, sibling, `${authPath.replace(/\/$/, '')}/refresh`])];
  return paths.flatMap((path) => METHODS.map((method) => ({ method, path })));
}

/** The plan, as said before anything is sent. */
export function describePlan(settings: Pick<DoctorSettings, 'baseUrl' | 'authPath'>): string[] {
  const routes = candidateRoutes(settings.authPath);
  const paths = [...new Set(routes.map((r) => r.path))];
  return [
    `It will send at most ${MAX_DOCTOR_CALLS} requests to ${settings.baseUrl}:`,
    `  1. Get token: POST ${settings.authPath} with FREEDOMPAY_AGENT_ID and FREEDOMPAY_AGENT_SECRET (one login).`,
    `  2. Up to ${routes.length} probes with a made-up refresh token: ${METHODS.join(', ')} on ${paths.join(', ')}.`,
    '  3. On a route that exists: refreshes with real refresh tokens (in the header, in the body, both),',
    '     one reuse of a spent refresh token, and the newest refresh token once more.',
    '  Tokens it gets are not used for anything else; they expire on their own.',
  ];
}

/**
 * Finds out, with the agent's own credentials, how the upstream serves Refresh token: logs in, probes
 * the candidate routes with a made-up refresh token (404/405: no such route), then spends real refresh
 * tokens only on routes that exist, to learn where the token goes and whether it is single-use. Sends at
 * most {@link MAX_DOCTOR_CALLS} requests through the module's own HTTP exchange (deadline, no
 * redirects, 64 KiB cap). Resolves to the report and the exit code: 0 the login works, 2 the
 * credentials were rejected, 3 the upstream was unavailable or answered something invalid.
 */
export async function runDoctor(settings: DoctorSettings): Promise<{ report: DoctorReport; exitCode: number }> {
  const run = new DoctorRun(settings);
  return run.run();
}

class DoctorRun {
  readonly report: DoctorReport;
  private readonly exchange: AuthExchange;
  private readonly clock: Clock;
  private readonly say: (line: string) => void;

  constructor(private readonly settings: DoctorSettings) {
    this.report = emptyReport(settings.baseUrl);
    this.clock = settings.clock ?? systemClock;
    this.exchange = new AuthExchange(settings.baseUrl, settings.requestTimeoutMs, this.clock);
    this.say = settings.progress;
  }

  async run(): Promise<{ report: DoctorReport; exitCode: number }> {
    let pair: Pair;
    try {
      pair = await this.login();
    } catch (error) {
      const code = error instanceof Stop ? error.error?.code : undefined;
      return { report: this.report, exitCode: code === 'INVALID_CREDENTIALS' ? 2 : 3 };
    }
    try {
      await this.findRefresh(pair);
      return { report: this.report, exitCode: 0 };
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      if (error.error === undefined) {
        this.say(`   Stopped: the budget of ${MAX_DOCTOR_CALLS} requests is spent; what is unknown stays null.`);
        return { report: this.report, exitCode: 0 };
      }
      this.say(`   Stopped: ${error.error.message}`);
      return { report: this.report, exitCode: 3 };
    }
  }

  /** One request, counted; a failure to get any answer stops the run. */
  private async send(call: Call, method: string, path: string, data?: string, token?: string): Promise<RawAnswer> {
    if (this.report.calls >= MAX_DOCTOR_CALLS) throw new Stop(undefined);
    this.report.calls++;
    try {
      return await this.exchange.send(
        {
          call,
          method: method as Method,
          path,
          data,
          authorization: token === undefined ? undefined : `Bearer ${token}`,
        },
        this.settings.signal,
      );
    } catch (error) {
      throw new Stop(error instanceof TransferAuthError ? error : undefined);
    }
  }

  private async login(): Promise<Pair> {
    const { authPath, agentId, agentSecret } = this.settings;
    this.say(`1. Get token: POST ${authPath}`);
    const started = this.clock.mono();
    let raw: RawAnswer;
    try {
      raw = await this.send('Get token', 'POST', authPath, AgentAuthRequestDto.of(agentId, agentSecret).toBody());
    } catch (error) {
      const failure = error instanceof Stop ? error.error : undefined;
      this.report.login.code = failure?.code ?? 'UPSTREAM_UNAVAILABLE';
      this.say(`   Failed: ${failure?.message ?? 'no answer.'}`);
      throw error;
    }
    const latencyMs = Math.round(this.clock.mono() - started);
    const login = this.report.login;
    login.status = raw.response.status;
    login.latencyMs = latencyMs;
    let answer: UpstreamTokenResponse;
    try {
      answer = parseAnswer('Get token', raw.response, raw.sentAt, this.clock);
    } catch (error) {
      const failure = error instanceof TransferAuthError ? error : undefined;
      login.code = failure?.code ?? 'INVALID_RESPONSE';
      this.say(`   HTTP ${raw.response.status} in ${latencyMs} ms: ${failure?.message ?? 'invalid answer.'}`);
      throw new Stop(failure);
    }
    login.ok = true;
    // `Date` is cut to the second: its moment lies in [Date, Date + 1 s), whose middle is taken.
    const serverNow = answer.serverDateMs === undefined ? answer.receivedAt.wall : answer.serverDateMs + 500;
    login.accessTtlSeconds = Math.round((Date.parse(answer.body.access_expire_at) - serverNow) / 1000);
    login.refreshTtlSeconds = Math.round((Date.parse(answer.body.refresh_expire_at) - serverNow) / 1000);
    if (answer.serverDateMs !== undefined) {
      const localMid = (answer.sentAt.wall + answer.receivedAt.wall) / 2;
      login.clockSkewSeconds = Math.round((serverNow - localMid) / 1000);
    }
    login.extraFields = extraFields(raw.response.data);
    const pair = { access: answer.body.access_token, refresh: answer.body.refresh_token };
    this.say(
      `   HTTP ${login.status} in ${latencyMs} ms: access token fp=${tokenFingerprint(pair.access)} lives ` +
        `${login.accessTtlSeconds} s, refresh token fp=${tokenFingerprint(pair.refresh)} ${login.refreshTtlSeconds} s.`,
    );
    this.say(
      login.clockSkewSeconds === null
        ? '   Clock skew: unknown (no Date header).'
        : `   Clock skew: the upstream's clock is ${signed(login.clockSkewSeconds)} s from this machine's.`,
    );
    this.say(`   Fields beyond the four documented ones: ${login.extraFields.join(', ') || 'none'}.`);
    return pair;
  }

  private async findRefresh(first: Pair): Promise<void> {
    const { authPath } = this.settings;
    const refresh = this.report.refresh;
    this.say('2. Refresh token routes, probed with a made-up refresh token (404/405: no such route):');
    const bogus = `doctor-probe-${randomBytes(16).toString('hex')}`;
    const existing: Route[] = [];
    for (const route of candidateRoutes(authPath)) {
      const { response } = await this.send(
        'Refresh token',
        route.method,
        route.path,
        RefreshTokenRequestDto.of(bogus).toBody(),
        bogus,
      );
      const exists = response.status !== 404 && response.status !== 405;
      refresh.probes.push({ method: route.method, path: route.path, status: response.status, exists });
      const login = route.method === 'POST' && route.path === authPath;
      this.say(
        `   ${route.method.padEnd(5)} ${route.path} -> ${response.status}: ${exists ? 'exists' : 'no such route'}${login ? ' (Get token)' : ''}`,
      );
      if (exists) existing.push(route);
    }
    // Get token's own route answers anything; it is tried last.
    existing.sort((a, b) => Number(isLogin(a, authPath)) - Number(isLogin(b, authPath)));
    if (existing.length === 0) return this.noRefresh('no candidate route exists');

    this.say('3. Real refresh tokens, on the routes that exist:');
    let pair = first;
    let found: { route: Route; placement: RefreshTokenLocation; spent: string } | undefined;
    for (const placement of ['both', 'header', 'body'] as const) {
      for (const route of existing) {
        const next = await this.refresh(route, placement, pair.refresh);
        if (next === undefined) continue;
        found = { route, placement, spent: pair.refresh };
        pair = next;
        break;
      }
      if (found !== undefined) break;
    }
    if (found === undefined) return this.noRefresh('no route renewed the token with a real refresh token');

    const { route } = found;
    const accepts = refresh.accepts;
    accepts[found.placement] = true;
    refresh.supported = true;
    refresh.method = route.method;
    refresh.path = route.path;
    let tokenIn: RefreshTokenLocation = found.placement;
    if (found.placement === 'both') {
      for (const alone of ['header', 'body'] as const) {
        const next = await this.refresh(route, alone, pair.refresh);
        accepts[alone] = next !== undefined;
        if (next !== undefined) pair = next;
      }
      tokenIn = accepts.header === true ? 'header' : accepts.body === true ? 'body' : 'both';
    }
    refresh.tokenIn = tokenIn;
    const option: DoctorRefreshOption = { method: route.method, path: route.path, tokenIn };
    this.report.recommended.refresh = option;

    this.say(`   The spent refresh token fp=${tokenFingerprint(found.spent)} once more:`);
    const newest = pair.refresh;
    const reused = await this.refresh(route, tokenIn, found.spent);
    refresh.singleUse = reused === undefined;
    this.say(
      `   -> ${refresh.singleUse ? 'refused: refresh tokens are single-use' : 'accepted: refresh tokens can be reused'}`,
    );
    this.say(`   The newest refresh token fp=${tokenFingerprint(newest)}, after that reuse:`);
    const after = await this.refresh(route, tokenIn, newest);
    refresh.familyRevokedOnReuse = after === undefined;
    this.say(
      `   -> ${after === undefined ? 'refused: a reuse revokes the whole family (every process must log in again)' : 'accepted: a reuse does not revoke the newer tokens'}`,
    );
  }

  private noRefresh(why: string): void {
    const refresh = this.report.refresh;
    refresh.supported = false;
    this.report.recommended.refresh = false;
    this.say(`   No Refresh token: ${why}; the module should always log in.`);
  }

  /** A refresh with a real token: the new pair when the route renewed it, else `undefined`. */
  private async refresh(route: Route, placement: RefreshTokenLocation, token: string): Promise<Pair | undefined> {
    const inBody = placement !== 'header';
    const inHeader = placement !== 'body';
    const raw = await this.send(
      'Refresh token',
      route.method,
      route.path,
      inBody ? RefreshTokenRequestDto.of(token).toBody() : undefined,
      inHeader ? token : undefined,
    );
    const where = placement === 'both' ? 'header and body' : placement;
    let pair: Pair | undefined;
    try {
      const answer = parseAnswer('Refresh token', raw.response, raw.sentAt, this.clock);
      pair = { access: answer.body.access_token, refresh: answer.body.refresh_token };
    } catch (error) {
      if (!(error instanceof TransferAuthError)) throw error;
      if (error.code === 'UPSTREAM_UNAVAILABLE') throw new Stop(error);
    }
    this.say(
      `   ${route.method.padEnd(5)} ${route.path}, refresh token fp=${tokenFingerprint(token)} in ${where} -> ` +
        `${raw.response.status}${pair === undefined ? '' : `: new refresh token fp=${tokenFingerprint(pair.refresh)}`}`,
    );
    return pair;
  }
}

function isLogin(route: Route, authPath: string): boolean {
  return route.method === 'POST' && route.path === authPath;
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

/** The names of the answer's fields beyond the four documented ones (never their values). */
function extraFields(data: unknown): string[] {
  try {
    const json: unknown = JSON.parse(typeof data === 'string' ? data : '');
    if (typeof json !== 'object' || json === null) return [];
    return Object.keys(json)
      .filter((key) => !TOKEN_FIELDS.has(key))
      .map((key) => key.replace(/[^\w.-]/g, '?').slice(0, 64));
  } catch {
    return [];
  }
}
