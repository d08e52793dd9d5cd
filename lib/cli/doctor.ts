import { randomBytes } from 'node:crypto';
import { AgentAuthRequestDto, RefreshTokenRequestDto } from '../dto/agent-auth-request.dto';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { RefreshTokenLocation } from '../interfaces/transfer-auth-module-options.interface';
import { tokenFingerprint } from '../telemetry/fingerprint';
import { toCachedToken } from '../token-lifecycle/cached-token';
import { systemClock, type Clock } from '../token-lifecycle/clock';
import { AuthExchange, type AnswerHead, type AuthRequest, type RawAnswer } from '../upstream/auth-exchange';
import type { UpstreamTokenResponse } from '../upstream/token-endpoint';
import { parseAnswer, serverDateOf, statusError, type Call } from '../upstream/upstream-answer';
import { emptyReport, type DoctorRefreshOption, type DoctorReport } from './doctor-report';
import { candidateRoutes, DOCTOR_RUN_DEADLINE_MS, MAX_DOCTOR_CALLS, type Route } from './doctor-plan';

// Loaded by main.ts only when the doctor runs: the DTOs and the answer validation need the peer
// dependencies class-validator and class-transformer.

const TOKEN_FIELDS = new Set(['access_token', 'refresh_token', 'access_expire_at', 'refresh_expire_at']);

/** An extra field's name is printed only in this shape (and when it holds no credential): else counted. */
const SHOWABLE_FIELD = /^[a-z][a-z0-9_]{0,31}$/;

/** What the doctor needs to run: where, with which credentials, and where its progress goes. */
export interface DoctorSettings {
  readonly baseUrl: string;
  readonly authPath: string;
  readonly agentId: string;
  readonly agentSecret: string;
  readonly requestTimeoutMs: number;
  /** The deadline of the whole run ({@link DOCTOR_RUN_DEADLINE_MS} unless told). */
  readonly runDeadlineMs?: number | undefined;
  /** One line of progress (no secret or token ever reaches it: fingerprints only). */
  readonly progress: (line: string) => void;
  /** Aborts the request in flight (Ctrl+C): the run ends with what it knows. */
  readonly signal: AbortSignal;
  readonly clock?: Clock | undefined;
}

/** Why the run stopped early: the request budget is spent (no error), or the upstream stopped answering. */
class Stop extends Error {
  constructor(readonly error: TransferAuthError | undefined) {
    super('doctor stopped');
  }
}

/** A token answer the module would take, and what its lifecycle makes of it. */
interface Judged {
  readonly answer: UpstreamTokenResponse;
  readonly cached: ReturnType<typeof toCachedToken>;
}

interface Pair {
  readonly access: string;
  readonly refresh: string;
}

/**
 * Finds out, with the agent's own credentials, how the upstream serves Refresh token: logs in, probes
 * the candidate routes with a made-up refresh token, then spends real refresh tokens only on routes
 * that exist, to learn where the token goes and whether it is single-use. A probe answered 404/405: no
 * such route; 3xx: unknown (a real token is never sent there); 408/429/5xx: the run stops (the upstream
 * asked to be left alone); anything else: the route exists. Token answers are judged as the module
 * judges them (the DTO, then the expiry times placed on the clocks). Sends at most
 * {@link MAX_DOCTOR_CALLS} requests through the module's own HTTP exchange (deadline, no redirects,
 * 64 KiB cap), within {@link DOCTOR_RUN_DEADLINE_MS}. Resolves to the report and the exit code: 0 the
 * login works, 2 the credentials were rejected, 3 the upstream was unavailable or answered something
 * invalid.
 */
export async function runDoctor(settings: DoctorSettings): Promise<{ report: DoctorReport; exitCode: number }> {
  return new DoctorRun(settings).run();
}

class DoctorRun {
  readonly report: DoctorReport;
  private readonly exchange: AuthExchange;
  private readonly clock: Clock;
  private readonly say: (line: string) => void;
  /** Aborted by the caller's signal, or when the run's deadline passes. */
  private readonly abort = new AbortController();
  private deadlinePassed = false;
  /** What a printed field name must not hold: the credentials and every token received in the run. */
  private readonly credentials: string[];

  constructor(private readonly settings: DoctorSettings) {
    this.report = emptyReport(settings.baseUrl);
    this.clock = settings.clock ?? systemClock;
    this.exchange = new AuthExchange(settings.baseUrl, settings.requestTimeoutMs, this.clock);
    this.say = settings.progress;
    this.credentials = [settings.agentSecret, settings.agentId];
  }

  async run(): Promise<{ report: DoctorReport; exitCode: number }> {
    const { signal } = this.settings;
    const onAbort = (): void => this.abort.abort(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    const deadlineMs = this.settings.runDeadlineMs ?? DOCTOR_RUN_DEADLINE_MS;
    const deadline = setTimeout(() => {
      this.deadlinePassed = true;
      this.abort.abort('deadline');
    }, deadlineMs);
    try {
      return await this.steps();
    } finally {
      clearTimeout(deadline);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async steps(): Promise<{ report: DoctorReport; exitCode: number }> {
    let pair: Pair;
    try {
      pair = await this.login();
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      if (error.error?.code === 'UPSTREAM_UNAVAILABLE') this.report.stopped = stopReason(error.error);
      return { report: this.report, exitCode: error.error?.code === 'INVALID_CREDENTIALS' ? 2 : 3 };
    }
    try {
      await this.findRefresh(pair);
      return { report: this.report, exitCode: 0 };
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      if (error.error === undefined) {
        this.report.stopped = { code: 'BUDGET', status: null, retryAfterSeconds: null };
        this.say(`   Stopped: the budget of ${MAX_DOCTOR_CALLS} requests is spent; what is unknown stays null.`);
        return { report: this.report, exitCode: 0 };
      }
      this.stopped(error.error);
      return { report: this.report, exitCode: 3 };
    }
  }

  private stopped(error: TransferAuthError): void {
    this.report.stopped = stopReason(error);
    this.say(`   Stopped: ${error.message} What is unknown stays null.`);
  }

  private deadlineError(): TransferAuthError {
    const seconds = (this.settings.runDeadlineMs ?? DOCTOR_RUN_DEADLINE_MS) / 1000;
    return new TransferAuthError('UPSTREAM_UNAVAILABLE', `The run's deadline of ${seconds} s passed.`);
  }

  /** One request, counted: its whole answer, or its head only (a probe); no answer at all stops the run. */
  private async send(request: AuthRequest, probe: true): Promise<AnswerHead>;
  private async send(request: AuthRequest, probe: false): Promise<RawAnswer>;
  private async send(request: AuthRequest, probe: boolean): Promise<AnswerHead | RawAnswer> {
    if (this.deadlinePassed) throw new Stop(this.deadlineError());
    if (this.report.calls >= MAX_DOCTOR_CALLS) throw new Stop(undefined);
    this.report.calls++;
    try {
      return probe
        ? await this.exchange.head(request, this.abort.signal)
        : await this.exchange.send(request, this.abort.signal);
    } catch (error) {
      if (this.deadlinePassed) throw new Stop(this.deadlineError());
      throw new Stop(error instanceof TransferAuthError ? error : undefined);
    }
  }

  private async login(): Promise<Pair> {
    const { authPath, agentId, agentSecret } = this.settings;
    this.say(`1. Get token: POST ${authPath}`);
    const started = this.clock.mono();
    const login = this.report.login;
    let raw: RawAnswer;
    try {
      const data = AgentAuthRequestDto.of(agentId, agentSecret).toBody();
      raw = await this.send({ call: 'Get token', method: 'POST', path: authPath, data }, false);
    } catch (error) {
      const failure = error instanceof Stop ? error.error : undefined;
      login.code = failure?.code ?? 'UPSTREAM_UNAVAILABLE';
      this.say(`   Failed: ${failure?.message ?? 'no answer.'}`);
      throw error;
    }
    const latencyMs = Math.round(this.clock.mono() - started);
    login.status = raw.response.status;
    login.latencyMs = latencyMs;
    // Judged as the module judges it: the DTO, then the expiry times placed on the clocks (a date not on
    // the calendar, an access token expired on arrival: INVALID_RESPONSE, every login of the app fails).
    let judged: Judged;
    try {
      judged = this.judge('Get token', raw);
    } catch (error) {
      const failure = error instanceof TransferAuthError ? error : undefined;
      login.code = failure?.code ?? 'INVALID_RESPONSE';
      this.say(`   HTTP ${raw.response.status} in ${latencyMs} ms: ${failure?.message ?? 'invalid answer.'}`);
      throw new Stop(failure);
    }
    const { answer, cached } = judged;
    login.ok = true;
    // `Date` is cut to the second: its moment lies in [Date, Date + 1 s), whose middle is taken.
    const serverNow = answer.serverDateMs === undefined ? answer.receivedAt.wall : answer.serverDateMs + 500;
    login.accessTtlSeconds = Math.round((cached.token.accessExpiresAt.getTime() - serverNow) / 1000);
    login.refreshTtlSeconds = Math.round((cached.token.refreshExpiresAt.getTime() - serverNow) / 1000);
    if (answer.serverDateMs !== undefined) {
      const localMid = (answer.sentAt.wall + answer.receivedAt.wall) / 2;
      login.clockSkewSeconds = Math.round((serverNow - localMid) / 1000);
    }
    const extra = extraFields(raw.response.data, this.credentials);
    login.extraFields = extra.named;
    login.unnamedExtraFields = extra.unnamed;
    const pair = { access: answer.body.access_token, refresh: answer.body.refresh_token };
    this.say(
      `   HTTP ${login.status} in ${latencyMs} ms: access token fp=${tokenFingerprint(pair.access)} lives ` +
        `${login.accessTtlSeconds} s, refresh token fp=${tokenFingerprint(pair.refresh)} ${login.refreshTtlSeconds} s.`,
    );
    if (cached.refresh === undefined) {
      this.say('   The refresh token is too close to its expiry on arrival: the module would log in instead.');
    }
    this.say(
      login.clockSkewSeconds === null
        ? '   Clock skew: unknown (no Date header).'
        : `   Clock skew: the upstream's clock is ${signed(login.clockSkewSeconds)} s from this machine's.`,
    );
    const unnamed = extra.unnamed === 0 ? '' : `${extra.unnamed} unnamed field${extra.unnamed === 1 ? '' : 's'}`;
    this.say(
      `   Fields beyond the four documented ones: ${[...extra.named, unnamed].filter(Boolean).join(', ') || 'none'}.`,
    );
    return pair;
  }

  /**
   * A token answer as the module's lifecycle takes it: validated (parseAnswer), then placed on the clocks
   * (toCachedToken). Its tokens join the values no printed name may hold, whatever the verdict.
   */
  private judge(call: Call, raw: RawAnswer): Judged {
    const answer = parseAnswer(call, raw.response, raw.sentAt, this.clock);
    this.credentials.push(answer.body.access_token, answer.body.refresh_token);
    return { answer, cached: toCachedToken(answer, undefined) };
  }

  private async findRefresh(first: Pair): Promise<void> {
    const { authPath } = this.settings;
    const refresh = this.report.refresh;
    this.say(
      '2. Refresh token routes, probed with a made-up refresh token (404/405: no such route; 3xx: unknown; 408/429/5xx: stop):',
    );
    const bogus = `doctor-probe-${randomBytes(16).toString('hex')}`;
    const existing: Route[] = [];
    for (const route of candidateRoutes(authPath)) {
      const head = await this.send(
        {
          call: 'Refresh token',
          method: route.method,
          path: route.path,
          data: RefreshTokenRequestDto.of(bogus).toBody(),
          authorization: `Bearer ${bogus}`,
        },
        true,
      );
      const status = head.status;
      const unavailable = status === 408 || status === 429 || status >= 500;
      const exists =
        status === 404 || status === 405 ? false : unavailable || (status >= 300 && status < 400) ? null : true;
      refresh.probes.push({ method: route.method, path: route.path, status, exists });
      const verdict = unavailable
        ? 'the upstream is unavailable or asks to slow down'
        : exists === null
          ? 'unknown (a redirect: no real token goes there)'
          : exists
            ? 'exists'
            : 'no such route';
      const login = route.method === 'POST' && route.path === authPath;
      const refused = head.bodyRefused ? ' (body not read)' : '';
      this.say(
        `   ${route.method.padEnd(5)} ${route.path} -> ${status}${refused}: ${verdict}${login ? ' (Get token)' : ''}`,
      );
      if (unavailable) throw new Stop(statusError('Refresh token', head, serverDateOf(head.headers), this.clock));
      if (exists === true) existing.push(route);
    }
    // Get token's own route answers anything; it is tried last.
    existing.sort((a, b) => Number(isLogin(a, authPath)) - Number(isLogin(b, authPath)));
    if (existing.length === 0) {
      if (refresh.probes.some((p) => p.exists === null)) {
        this.say(
          '   No route is known to exist, and some answered with a redirect: how Refresh token is served is unknown.',
        );
        return;
      }
      return this.noRefresh('no candidate route exists');
    }

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

  /**
   * A refresh with a real token: the new pair when the route renewed it (an answer the module would take),
   * else `undefined`. An answer 408/429/5xx stops the run.
   */
  private async refresh(route: Route, placement: RefreshTokenLocation, token: string): Promise<Pair | undefined> {
    const inBody = placement !== 'header';
    const inHeader = placement !== 'body';
    const raw = await this.send(
      {
        call: 'Refresh token',
        method: route.method,
        path: route.path,
        data: inBody ? RefreshTokenRequestDto.of(token).toBody() : undefined,
        authorization: inHeader ? `Bearer ${token}` : undefined,
      },
      false,
    );
    const where = placement === 'both' ? 'header and body' : placement;
    let pair: Pair | undefined;
    let invalid = '';
    try {
      const { answer } = this.judge('Refresh token', raw);
      pair = { access: answer.body.access_token, refresh: answer.body.refresh_token };
    } catch (error) {
      if (!(error instanceof TransferAuthError)) throw error;
      if (error.code === 'UPSTREAM_UNAVAILABLE') throw new Stop(error);
      const status = raw.response.status;
      if (error.code === 'INVALID_RESPONSE' && status >= 200 && status < 300) {
        invalid = ': an answer the module refuses, so it did not renew';
      }
    }
    this.say(
      `   ${route.method.padEnd(5)} ${route.path}, refresh token fp=${tokenFingerprint(token)} in ${where} -> ` +
        `${raw.response.status}${pair === undefined ? invalid : `: new refresh token fp=${tokenFingerprint(pair.refresh)}`}`,
    );
    return pair;
  }
}

function stopReason(error: TransferAuthError): NonNullable<DoctorReport['stopped']> {
  const retryAfterMs = error.retryAfterMs;
  return {
    code: error.code,
    status: error.status ?? null,
    retryAfterSeconds: retryAfterMs === undefined ? null : Math.ceil(retryAfterMs / 1000),
  };
}

function isLogin(route: Route, authPath: string): boolean {
  return route.method === 'POST' && route.path === authPath;
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

/**
 * The answer's fields beyond the four documented ones: the names that are safe to print, and how many
 * others there are. A name is printed only when it is short, lowercase, looks like a word (at most 3
 * digits, no 21-character run without `_`) and neither contains nor is contained in a credential or a
 * token of the run (on letters and digits alone, case aside): an upstream may key a map by a token, or
 * echo the secret as a key.
 */
export function extraFields(data: unknown, credentials: readonly string[]): { named: string[]; unnamed: number } {
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : '');
  } catch {
    return { named: [], unnamed: 0 };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { named: [], unnamed: 0 };
  // Compared on letters and digits alone, case aside: `rt_abc` is the token `RT-abc` all the same.
  const bare = (text: string): string => text.toLowerCase().replace(/[^a-z0-9]/g, '');
  const values = credentials.map(bare).filter((c) => c !== '');
  const named: string[] = [];
  let unnamed = 0;
  for (const key of Object.keys(json)) {
    if (TOKEN_FIELDS.has(key)) continue;
    const name = bare(key);
    const showable =
      SHOWABLE_FIELD.test(key) &&
      (key.match(/\d/g) ?? []).length <= 3 &&
      key.split('_').every((part) => part.length <= 20) &&
      !values.some((value) => value.includes(name) || name.includes(value));
    if (showable) named.push(key);
    else unnamed++;
  }
  return { named, unnamed };
}
