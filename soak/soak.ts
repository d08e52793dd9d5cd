import 'reflect-metadata';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TransferAuthError, TransferAuthModule, TransferAuthService, type TransferAuthModuleOptions } from '../lib';
import { FakeTransferServer } from '../lib/testing';
import { UPSTREAM_CLOCK_RESOLUTION_MS } from '../lib/internal.constants';
import { INSTRUMENTATION_NAME } from '../lib/telemetry/otel-telemetry';
import { randomFaults } from './random-faults';
import { MetricsSampler } from './soak-metrics';

/**
 * Soak: 200 callers ask for tokens with small random pauses for SOAK_SECONDS (default 600), while the
 * upstream (its clock 90 s ahead of ours) issues 2 s tokens and fails ~30% of its requests in random
 * ways. Asserts that no expired or invalid token is ever handed out, that no caller waits longer than
 * the options allow, that nothing is rejected unhandled, that upstream calls stay bounded, that the
 * heap stays flat after warm-up, and that nothing calls the upstream after close(). Exit code 1 on
 * any violation (2: the process did not exit by itself). Run with `node --expose-gc`.
 *
 * SOAK_ACCESS_TTL_MS, SOAK_REFRESH_TTL_MS and SOAK_FAULT_RATE change the tokens' lifetimes and the share of
 * failed requests. `--metrics-out <file>` registers an OpenTelemetry MeterProvider first and writes the
 * package's metrics, read every `--metrics-interval-ms` (1000), to that JSON file with the run's
 * parameters and results: `npm run chart:observability` draws it.
 */
const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const CALLERS = Number(process.env.SOAK_CALLERS ?? 200);
const ACCESS_TTL_MS = Number(process.env.SOAK_ACCESS_TTL_MS ?? 2_000);
const REFRESH_TTL_MS = Number(process.env.SOAK_REFRESH_TTL_MS ?? 10_000);
const FAULT_RATE = Number(process.env.SOAK_FAULT_RATE ?? 0.3);
/** The upstream's clock runs this far ahead of ours: expiry must be read against its `Date`, not ours. */
const CLOCK_OFFSET_MS = Number(process.env.SOAK_CLOCK_OFFSET_MS ?? 90_000);
const MAX_CALLER_PAUSE_MS = 20;
/** Event-loop lag, timer lateness and GC pauses on a busy machine. */
const WAIT_MARGIN_MS = 500;
const HEAP_GROWTH_LIMIT_MB = 5;
const METRICS_OUT = argument('--metrics-out');
const METRICS_INTERVAL_MS = Number(argument('--metrics-interval-ms') ?? 1_000);
const OPTIONS = {
  requestTimeoutMs: 400,
  retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 400 },
  refreshMarginMs: 800,
} satisfies Partial<TransferAuthModuleOptions>;

/** The value after `flag` on the command line (`--flag value` or `--flag=value`). */
function argument(flag: string): string | undefined {
  const args = process.argv.slice(2);
  const at = args.indexOf(flag);
  if (at >= 0) return args[at + 1];
  return args.find((arg) => arg.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

/**
 * The longest a caller may wait: the one renewal it waits for sends at most a refresh, then `maxAttempts`
 * Get token requests, each of at most `requestTimeoutMs`, with the backoff waits in between (the soak's
 * `Retry-After` is longer than `maxDelayMs`: it ends the renewal, and later callers are refused at once).
 */
function waitBoundMs(): number {
  const { maxAttempts, baseDelayMs, maxDelayMs } = OPTIONS.retry;
  let backoff = 0;
  for (let step = 0; step < maxAttempts - 1; step++) backoff += Math.min(maxDelayMs, baseDelayMs * 2 ** step);
  return (1 + maxAttempts) * OPTIONS.requestTimeoutMs + backoff + WAIT_MARGIN_MS;
}

/**
 * Upstream calls per token obtained, on average: a renewal that gets one sends at most a refresh and
 * `retry.maxAttempts` logins (the retry option as it works since 0.3: Get token tried up to that many
 * times on a fast transient failure). A herd would be far above.
 */
function callsPerTokenBound(): number {
  return 1 + OPTIONS.retry.maxAttempts;
}

/**
 * Upstream calls in any one token lifetime. The package reads the upstream's `Date` as up to 1 s late,
 * so a token stays fresh at least `ttl - 1 s - refreshMarginMs`: at most that many renewals fit in a
 * lifetime, each of at most a refresh and `maxAttempts` logins. A herd (callers each calling) would be
 * far above.
 */
function callsPerLifetimeBound(): number {
  const freshMs = ACCESS_TTL_MS - UPSTREAM_CLOCK_RESOLUTION_MS - OPTIONS.refreshMarginMs;
  return Math.ceil(ACCESS_TTL_MS / freshMs) * (1 + OPTIONS.retry.maxAttempts);
}

class CountingLogger implements LoggerService {
  readonly lines: string[] = [];
  readonly counts: Record<string, number> = {};
  private record(level: string, message: unknown): void {
    this.counts[level] = (this.counts[level] ?? 0) + 1;
    if (this.lines.length < 20_000) this.lines.push(`${level} ${String(message)}`);
  }
  log(message: unknown): void {
    this.record('log', message);
  }
  warn(message: unknown): void {
    this.record('warn', message);
  }
  error(message: unknown): void {
    this.record('error', message);
  }
  debug(message: unknown): void {
    this.record('debug', message);
  }
  verbose(message: unknown): void {
    this.record('verbose', message);
  }
  fatal(message: unknown): void {
    this.record('fatal', message);
  }
}

function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

interface Stats {
  served: number;
  invalid: number;
  errors: Map<string, number>;
  unexpected: number;
  overBound: number;
  waited: number;
  maxWaitMs: number;
  waits: number[];
}

async function main(): Promise<void> {
  const durationMs = SECONDS * 1000;
  const boundMs = waitBoundMs();
  const gc = exposeGc();
  let unhandled = 0;
  process.on('unhandledRejection', (reason) => {
    unhandled++;
    console.error(`unhandled rejection: ${reason instanceof Error ? reason.name : typeof reason}`);
  });

  const fake = await new FakeTransferServer({
    accessTtlMs: ACCESS_TTL_MS,
    refreshTtlMs: REFRESH_TTL_MS,
    clockOffsetMs: CLOCK_OFFSET_MS,
  }).start();
  const logger = new CountingLogger();
  // Before the app: the package takes its meter from the global provider when it initialises.
  const sampler = METRICS_OUT === undefined ? undefined : new MetricsSampler(METRICS_INTERVAL_MS, INSTRUMENTATION_NAME);
  const app = await NestFactory.createApplicationContext(
    TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url, ...OPTIONS }),
    { logger },
  );
  const auth = app.get(TransferAuthService);
  const events: Record<string, number> = {};
  auth.events$.subscribe((event) => (events[event.type] = (events[event.type] ?? 0) + 1));
  const faults = randomFaults(FAULT_RATE);
  fake.faultPolicy = faults.policy;

  console.log(
    `soak: ${SECONDS} s, ${CALLERS} callers, ${ACCESS_TTL_MS} ms access tokens, ~${FAULT_RATE * 100}% of upstream calls fail, upstream clock ${CLOCK_OFFSET_MS} ms ahead`,
  );
  console.log(`options: ${JSON.stringify(OPTIONS)}`);
  console.log(
    `bounds: a waiting caller ${boundMs} ms; upstream calls in one token lifetime ${callsPerLifetimeBound()}, ` +
      `per token obtained (mean) ${callsPerTokenBound()}`,
  );

  // Upstream calls, counted per token lifetime; the fake's records and expired tokens are dropped as we
  // go, so that the heap measures the package, not the fake.
  let upstream = { total: 0, auth: 0, refresh: 0 };
  const perLifetime: number[] = [];
  const drainCounters = (): number => {
    const { total, auth: a, refresh: r } = fake.calls;
    upstream = { total: upstream.total + total, auth: upstream.auth + a, refresh: upstream.refresh + r };
    fake.resetCounters();
    fake.forgetExpiredTokens();
    return total;
  };
  const lifetimeTimer = setInterval(() => perLifetime.push(drainCounters()), ACCESS_TTL_MS);

  const stats: Stats = {
    served: 0,
    invalid: 0,
    errors: new Map(),
    unexpected: 0,
    overBound: 0,
    waited: 0,
    maxWaitMs: 0,
    waits: [],
  };
  let running = true;
  const caller = async (): Promise<void> => {
    while (running) {
      const started = performance.now();
      try {
        const token = await auth.getAccessToken();
        stats.served++;
        if (!fake.isAccessTokenValid(token)) stats.invalid++;
      } catch (error) {
        const code = error instanceof TransferAuthError ? error.code : 'not a TransferAuthError';
        stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
        if (code !== 'UPSTREAM_UNAVAILABLE' && code !== 'INVALID_RESPONSE') stats.unexpected++;
      }
      const waitedMs = performance.now() - started;
      if (waitedMs > 1) {
        stats.waited++;
        if (stats.waits.length < 100_000) stats.waits.push(waitedMs);
      }
      stats.maxWaitMs = Math.max(stats.maxWaitMs, waitedMs);
      if (waitedMs > boundMs) stats.overBound++;
      await sleep(Math.random() * MAX_CALLER_PAUSE_MS);
    }
  };

  const started = performance.now();
  sampler?.start(started);
  const loops = Array.from({ length: CALLERS }, () => caller());
  const warmUpMs = Math.min(60_000, Math.max(10_000, durationMs * 0.2));
  const heap: { at: number; bytes: number }[] = [];
  const progressEveryMs = Math.max(5_000, Math.min(60_000, durationMs / 10));
  let nextProgress = progressEveryMs;
  let baseline: number | undefined;
  while (performance.now() - started < durationMs) {
    await sleep(Math.min(1_000, durationMs - (performance.now() - started)));
    const elapsed = performance.now() - started;
    if (baseline === undefined && elapsed >= warmUpMs) {
      baseline = heapAfterGc(gc);
      heap.push({ at: elapsed, bytes: baseline });
    }
    if (elapsed >= nextProgress) {
      nextProgress += progressEveryMs;
      if (baseline !== undefined) heap.push({ at: elapsed, bytes: heapAfterGc(gc) });
      const errors = [...stats.errors.values()].reduce((a, b) => a + b, 0);
      console.log(
        `  t=${Math.round(elapsed / 1000)} s  served ${stats.served}  errors ${errors}  invalid ${stats.invalid}  ` +
          `over bound ${stats.overBound}  upstream ${upstream.total + fake.calls.total}  heap ${mb(process.memoryUsage().heapUsed)} MB`,
      );
    }
  }
  const finalHeap = heapAfterGc(gc);
  heap.push({ at: performance.now() - started, bytes: finalHeap });
  running = false;
  await Promise.all(loops);
  const ranMs = performance.now() - started;
  await sampler?.stop();
  clearInterval(lifetimeTimer);
  drainCounters();

  // Shutdown: nothing reaches the upstream once close() has returned (requests already on the wire
  // are given 200 ms to arrive), and the provider answers SHUTDOWN.
  await app.close();
  await sleep(200);
  drainCounters(); // requests sent before close() have arrived by now
  await sleep(2 * OPTIONS.retry.maxDelayMs + ACCESS_TTL_MS);
  const afterClose = drainCounters();
  const shutdownCode = await auth.getAccessToken().then(
    () => 'a token',
    (error: unknown) => (error instanceof TransferAuthError ? error.code : 'not a TransferAuthError'),
  );
  await fake.stop();

  // Every token the fake issues starts with one of these (expired ones are forgotten as we go).
  const leakingLines = logger.lines.filter(
    (line) => line.includes(fake.agentSecret) || /fake-(?:at|rt)-/.test(line),
  ).length;
  const sortedWaits = [...stats.waits].sort((a, b) => a - b);
  const pct = (p: number): string =>
    sortedWaits.length === 0 ? '-' : (sortedWaits[Math.floor((sortedWaits.length - 1) * p)] as number).toFixed(0);
  const lifetimes = perLifetime.slice(1); // the first window holds the start-up
  const meanPerLifetime = lifetimes.reduce((a, b) => a + b, 0) / Math.max(1, lifetimes.length);
  const maxPerLifetime = Math.max(0, ...lifetimes);
  const obtained = (events['token.acquired'] ?? 0) + (events['token.refreshed'] ?? 0);
  const callsPerToken = upstream.total / Math.max(1, obtained);
  const growth = baseline === undefined ? 0 : finalHeap - baseline;
  const injected = [...faults.injected.entries()].map(([name, n]) => `${name}: ${n}`).join(', ');

  console.log('RESULT');
  console.log(`  duration                    ${(ranMs / 1000).toFixed(0)} s, ${CALLERS} callers`);
  console.log(`  tokens served               ${stats.served}`);
  console.log(`  errors by code              ${JSON.stringify(Object.fromEntries(stats.errors))}`);
  console.log(`  expired/invalid tokens      ${stats.invalid}`);
  console.log(
    `  callers that waited         ${stats.waited} (p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${stats.maxWaitMs.toFixed(0)} ms)`,
  );
  console.log(`  waits over the bound        ${stats.overBound} (bound ${boundMs} ms)`);
  console.log(`  unhandled rejections        ${unhandled}`);
  console.log(
    `  upstream calls              ${upstream.total} (Get token ${upstream.auth}, Refresh token ${upstream.refresh}); faults injected ${[...faults.injected.values()].reduce((a, b) => a + b, 0)}`,
  );
  console.log(`  faults by kind              ${injected}`);
  console.log(
    `  upstream calls per lifetime mean ${meanPerLifetime.toFixed(2)}, max ${maxPerLifetime} (${lifetimes.length} lifetimes of ${ACCESS_TTL_MS} ms)`,
  );
  console.log(`  upstream calls per token    ${callsPerToken.toFixed(2)} (${obtained} tokens obtained)`);
  console.log(`  events                      ${JSON.stringify(events)}`);
  console.log(
    `  log lines                   ${JSON.stringify(logger.counts)}; with a secret or token: ${leakingLines}`,
  );
  console.log(
    `  heap after gc (MB)          ${heap.map((h) => `${Math.round(h.at / 1000)}s:${mb(h.bytes)}`).join(' ')}; growth after warm-up ${mb(growth)} MB`,
  );
  console.log(`  after close()               upstream calls ${afterClose}, getAccessToken -> ${shutdownCode}`);

  const violations: string[] = [];
  if (stats.served === 0) violations.push('no token was ever served');
  if (stats.invalid > 0) violations.push(`${stats.invalid} expired or invalid tokens handed out`);
  if (stats.overBound > 0) violations.push(`${stats.overBound} callers waited longer than ${boundMs} ms`);
  if (stats.unexpected > 0) violations.push(`${stats.unexpected} errors with an unexpected code`);
  if (unhandled > 0) violations.push(`${unhandled} unhandled rejections`);
  if (maxPerLifetime > callsPerLifetimeBound()) {
    violations.push(`${maxPerLifetime} upstream calls in one token lifetime (bound ${callsPerLifetimeBound()})`);
  }
  if (callsPerToken > callsPerTokenBound()) {
    violations.push(`${callsPerToken.toFixed(2)} upstream calls per token obtained (bound ${callsPerTokenBound()})`);
  }
  if (growth > HEAP_GROWTH_LIMIT_MB * 1024 * 1024) violations.push(`heap grew ${mb(growth)} MB after warm-up`);
  if (leakingLines > 0) violations.push(`${leakingLines} log lines hold a secret or token`);
  if (afterClose > 0) violations.push(`${afterClose} upstream calls after close()`);
  if (shutdownCode !== 'SHUTDOWN') violations.push(`getAccessToken after close() gave ${shutdownCode}`);
  console.log(violations.length === 0 ? 'VIOLATIONS: none' : `VIOLATIONS:\n  - ${violations.join('\n  - ')}`);
  if (sampler !== undefined && METRICS_OUT !== undefined) {
    sampler.write(METRICS_OUT, {
      seconds: Math.round(ranMs / 1000),
      callers: CALLERS,
      accessTtlMs: ACCESS_TTL_MS,
      refreshTtlMs: REFRESH_TTL_MS,
      faultRate: FAULT_RATE,
      clockOffsetMs: CLOCK_OFFSET_MS,
      options: OPTIONS,
      served: stats.served,
      errors: Object.fromEntries(stats.errors),
      invalid: stats.invalid,
      callersThatWaited: stats.waited,
      maxWaitMs: Math.round(stats.maxWaitMs),
      upstream,
      faultsInjected: Object.fromEntries(faults.injected),
      events,
      violations,
    });
    console.log(`metrics: ${sampler.count} reads every ${METRICS_INTERVAL_MS} ms written to ${METRICS_OUT}`);
  }
  process.exitCode = violations.length === 0 ? 0 : 1;

  // Unref'd: it fires only if something (a timer or socket of ours) keeps the process alive.
  setTimeout(() => {
    console.error('VIOLATION: the process did not exit by itself within 10 s of close()');
    process.exit(2);
  }, 10_000).unref();
}

main().catch((error: unknown) => {
  console.error(`soak failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  process.exitCode = 1;
});
