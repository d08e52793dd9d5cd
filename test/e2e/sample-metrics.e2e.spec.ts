import { type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { INITIAL_OUTCOMES, INSTRUMENTATION_NAME, METRIC } from '../../lib/telemetry/otel-telemetry';
import { AppModule, type AppModuleOptions } from '../../sample-app/src/app.module';
import { SAMPLE_SERVICE_NAME, startMetrics, type SampleMetrics } from '../../sample-app/src/metrics';
import { installCapturingLogger, type CapturingLogger } from '../support/auth-app';
import { leakedSecrets, secretsOf, waitFor } from '../support/e2e';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/**
 * `GET /metrics` of the sample app (what `npm start` serves): the package's instruments, in the Prometheus
 * text format of `@opentelemetry/exporter-prometheus`, with the values of what the app just did, each
 * sample named by its registration, and no token or secret anywhere.
 */

/** Every instrument of the package, as Prometheus names it, and its TYPE. */
const PROMETHEUS = {
  renewals: ['freedompay_transfer_auth_renewals_total', 'counter'],
  renewalDuration: ['freedompay_transfer_auth_renewal_duration_seconds', 'histogram'],
  accessTimeLeft: ['freedompay_transfer_auth_access_token_time_left_seconds', 'gauge'],
  accessExpiration: ['freedompay_transfer_auth_access_token_expiration_timestamp_seconds', 'gauge'],
  refreshTimeLeft: ['freedompay_transfer_auth_refresh_token_time_left_seconds', 'gauge'],
  waitDuration: ['freedompay_transfer_auth_wait_duration_seconds', 'histogram'],
  callerErrors: ['freedompay_transfer_auth_caller_errors_total', 'counter'],
  invalidations: ['freedompay_transfer_auth_invalidations_total', 'counter'],
  adoptions: ['freedompay_transfer_auth_store_adoptions_total', 'counter'],
  locks: ['freedompay_transfer_auth_store_locks_total', 'counter'],
  storeErrors: ['freedompay_transfer_auth_store_errors_total', 'counter'],
  degraded: ['freedompay_transfer_auth_store_degraded', 'gauge'],
} as const satisfies Record<keyof typeof METRIC, readonly [string, string]>;

const IN_PROCESS = [
  'renewals',
  'renewalDuration',
  'accessTimeLeft',
  'accessExpiration',
  'refreshTimeLeft',
  'waitDuration',
  'callerErrors',
  'invalidations',
];

const NAME = 'freedompay_transfer_auth_name';
const KIND = 'freedompay_transfer_auth_kind';
const OUTCOME = 'freedompay_transfer_auth_outcome';

interface Sample {
  readonly metric: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The Prometheus text format: `# TYPE` lines, and one sample per line. */
class Scrape {
  readonly types = new Map<string, string>();
  readonly units = new Map<string, string>();
  readonly samples: Sample[] = [];

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      const meta = /^# (TYPE|UNIT) (\S+) (\S+)$/.exec(line);
      if (meta) (meta[1] === 'TYPE' ? this.types : this.units).set(meta[2] as string, meta[3] as string);
      const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (sample === null || line.startsWith('#')) continue;
      const labels = Object.fromEntries(
        [...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, key, value]) => [key, value]),
      );
      this.samples.push({ metric: sample[1] as string, labels, value: Number(sample[3]) });
    }
  }

  /** The samples of `metric` whose labels include `labels`. */
  find(metric: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.metric === metric && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
    );
  }

  /** The value of the one sample of `metric` with `labels`. */
  value(metric: string, labels: Record<string, string>): number | undefined {
    const found = this.find(metric, labels);
    if (found.length > 1) throw new Error(`${found.length} samples of ${metric} with ${JSON.stringify(labels)}`);
    return found[0]?.value;
  }

  /** The package's samples (every series of its instruments). */
  ours(): Sample[] {
    return this.samples.filter((s) => s.metric.startsWith('freedompay_transfer_auth_'));
  }
}

describe('sample app: GET /metrics (the OpenTelemetry SDK with a Prometheus exporter)', () => {
  let fake: FakeTransferServer;
  let logger: CapturingLogger;
  let app: INestApplication | undefined;
  let metrics: SampleMetrics | undefined;

  beforeEach(async () => {
    logger = installCapturingLogger();
    fake = await new FakeTransferServer().start();
  });

  /** Closes the app, once (the afterEach does not close again what a test closed itself). */
  async function closeApp(): Promise<void> {
    await app?.close();
    app = undefined;
  }

  afterEach(async () => {
    await closeApp();
    await metrics?.shutdown();
    metrics = undefined;
    await fake.stop();
  });

  /** As main.ts does: the SDK registered globally first, then the app, on a free port. */
  async function boot(options: AppModuleOptions): Promise<string> {
    metrics = startMetrics();
    app = await NestFactory.create(AppModule.forRoot({ ...options, metrics }), { logger, abortOnError: false });
    await app.listen(0, '127.0.0.1');
    return app.getUrl();
  }

  async function scrape(url: string): Promise<Scrape> {
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    return new Scrape(await response.text());
  }

  it('shows every in-process instrument with its TYPE, the values of what happened, per registration', async () => {
    const usd = await new FakeTransferServer({ agentId: 'usd-agent' }).start();
    try {
      const url = await boot({ embeddedFake: fake, embeddedUsdFake: usd });
      expect((await fetch(`${url}/auth/status`)).status).toBe(200);
      // One Transfer call refused with a 401: the token is dropped, refreshed, and the call retried.
      fake.failNext('agents', { kind: 'status', status: 401 });
      expect((await fetch(`${url}/agents`)).status).toBe(200);

      const scraped = await scrape(url);

      for (const key of IN_PROCESS) {
        const [metric, type] = PROMETHEUS[key as keyof typeof PROMETHEUS];
        expect({ metric, type: scraped.types.get(metric) }).toEqual({ metric, type });
      }
      // Prometheus conventions, as promtool's linter checks them: seconds in the name, counters end in _total.
      for (const [metric, type] of Object.values(PROMETHEUS)) {
        if (type === 'counter') expect(metric).toMatch(/_total$/);
        if (scraped.units.get(metric) === 's') expect(metric).toMatch(/_seconds$/);
      }
      expect(scraped.units.get(PROMETHEUS.renewalDuration[0])).toBe('s');
      expect(scraped.units.get(PROMETHEUS.accessTimeLeft[0])).toBe('s');
      expect(scraped.units.get(PROMETHEUS.accessExpiration[0])).toBe('s');
      // The resource names the service: not `unknown_service:node`.
      expect(scraped.find('target_info').map((s) => s.labels['service_name'])).toEqual([SAMPLE_SERVICE_NAME]);
      const renewals = PROMETHEUS.renewals[0];
      // Each agent logged in once at startup; the default one refreshed once after the 401.
      expect(scraped.value(renewals, { [NAME]: 'default', [KIND]: 'login', [OUTCOME]: 'ok' })).toBe(1);
      expect(scraped.value(renewals, { [NAME]: 'usd', [KIND]: 'login', [OUTCOME]: 'ok' })).toBe(1);
      expect(scraped.value(renewals, { [NAME]: 'default', [KIND]: 'refresh', [OUTCOME]: 'ok' })).toBe(1);
      // The usd agent has not refreshed: its refresh series are there, at 0 (as from init).
      const usdRefreshes = scraped.find(renewals, { [NAME]: 'usd', [KIND]: 'refresh' });
      expect(usdRefreshes.map((s) => s.labels[OUTCOME]).sort()).toEqual([...INITIAL_OUTCOMES.refresh].sort());
      expect(usdRefreshes.map((s) => s.value)).toEqual(usdRefreshes.map(() => 0));
      // No caller got an error: every outcome the alert rules name is there at 0, for each registration.
      for (const name of ['default', 'usd']) {
        const errors = scraped.find(PROMETHEUS.callerErrors[0], { [NAME]: name });
        expect(errors.map((s) => [s.labels[OUTCOME], s.value]).sort()).toEqual(
          INITIAL_OUTCOMES.callers.map((outcome) => [outcome, 0]).sort(),
        );
      }
      expect(scraped.value(PROMETHEUS.invalidations[0], { [NAME]: 'default', [OUTCOME]: 'dropped' })).toBe(1);
      expect(scraped.value(`${PROMETHEUS.renewalDuration[0]}_count`, { [NAME]: 'default', [KIND]: 'login' })).toBe(1);
      // The retry after the 401 waited for the renewal (no usable token was cached meanwhile).
      const waits = scraped.value(`${PROMETHEUS.waitDuration[0]}_count`, { [NAME]: 'default', [OUTCOME]: 'ok' });
      expect(waits).toBeGreaterThanOrEqual(1);
      // The startup fetch is not a caller's wait: the usd agent, only started, has none.
      expect(scraped.find(`${PROMETHEUS.waitDuration[0]}_count`, { [NAME]: 'usd' })).toEqual([]);
      for (const name of ['default', 'usd']) {
        // The fake's tokens live an hour, their refresh tokens a day.
        const access = scraped.value(PROMETHEUS.accessTimeLeft[0], { [NAME]: name }) ?? 0;
        expect(access).toBeGreaterThan(3_500);
        expect(access).toBeLessThanOrEqual(3_600);
        expect(scraped.value(PROMETHEUS.refreshTimeLeft[0], { [NAME]: name })).toBeGreaterThan(86_000);
        // The expiry: now + the time left, as a Unix time in seconds (both read in the same collection).
        const expires = scraped.value(PROMETHEUS.accessExpiration[0], { [NAME]: name }) ?? 0;
        expect(Math.abs(expires - (Date.now() / 1000 + access))).toBeLessThan(5);
      }
      // No shared store: no store series at all.
      for (const key of ['adoptions', 'locks', 'storeErrors', 'degraded'] as const) {
        expect(scraped.find(PROMETHEUS[key][0])).toEqual([]);
      }
      // Every series names its registration; the agent id only with `agentIdAttribute` (not set here).
      const ours = scraped.ours();
      expect(ours.length).toBeGreaterThan(20);
      expect(ours.filter((s) => !['default', 'usd'].includes(s.labels[NAME] ?? ''))).toEqual([]);
      expect(ours.filter((s) => 'freedompay_transfer_agent_id' in s.labels)).toEqual([]);
      expect(scraped.text).not.toContain(fake.agentId);
      expect(leakedSecrets(scraped.text, [...secretsOf(fake), ...secretsOf(usd)])).toEqual([]);
      expect(scraped.text).not.toMatch(/fake-(?:at|rt)-/);
    } finally {
      await closeApp();
      await usd.stop();
    }
  });

  it('shuts the SDK down with the app: the global MeterProvider is free for the next one', async () => {
    const url = await boot({ embeddedFake: fake });
    const labels = { [NAME]: 'default', [KIND]: 'login', [OUTCOME]: 'ok' };
    expect((await scrape(url)).value(PROMETHEUS.renewals[0], labels)).toBe(1);
    await closeApp();

    const next = startMetrics(); // throws while another provider is registered
    await next.shutdown();
  });

  it('an SDK registered once the app has initialised gets nothing from the package: register it first', async () => {
    app = await NestFactory.create(AppModule.forRoot({ embeddedFake: fake }), { logger, abortOnError: false });
    await app.init(); // the token is fetched, the meter taken from the (no-op) global provider
    metrics = startMetrics();
    await app.get(TransferAuthService).forceRefresh();

    const { resourceMetrics } = await metrics.exporter.collect();

    expect(fake.calls.auth + fake.calls.refresh).toBe(2);
    expect(resourceMetrics.scopeMetrics.map(({ scope }) => scope.name)).not.toContain(INSTRUMENTATION_NAME);
  });

  describe('with REDIS_URL (a shared store)', () => {
    let redis: RedisProcess;
    let peer: INestApplicationContext | undefined;
    let peerRedis: Redis | undefined;

    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis.stop();
    });
    afterEach(async () => {
      await redis.resume().catch(() => undefined);
      await peer?.close();
      peer = undefined;
      peerRedis?.disconnect();
      peerRedis = undefined;
    });

    it('shows every instrument, the store ones too: locks, adoptions, store errors, degraded mode', async () => {
      const url = await boot({ embeddedFake: fake, redisUrl: redis.url });
      const auth = (app as INestApplication).get(TransferAuthService);
      // Another process (telemetry off: it records nothing here) renews the shared token: we adopt it.
      peerRedis = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      peer = await NestFactory.createApplicationContext(
        TransferAuthModule.forRoot({
          agentId: fake.agentId,
          agentSecret: fake.agentSecret,
          baseUrl: fake.url,
          store: new RedisTokenStore({ client: peerRedis }),
          telemetry: false,
        }),
        { logger },
      );
      const renewed = await peer.get(TransferAuthService).forceRefresh();
      expect(fake.isAccessTokenValid(renewed)).toBe(true);
      const peerPrint = peer.get(TransferAuthService).getStatus().accessTokenFingerprint;
      await waitFor(() => auth.getStatus().accessTokenFingerprint === peerPrint, 'the adoption of the peer token');

      const healthy = await scrape(url);
      for (const key of ['adoptions', 'locks', 'degraded'] as const) {
        const [metric, type] = PROMETHEUS[key];
        expect({ metric, type: healthy.types.get(metric) }).toEqual({ metric, type });
      }
      expect(healthy.value(PROMETHEUS.locks[0], { [NAME]: 'default', [OUTCOME]: 'acquired' })).toBe(1);
      expect(healthy.value(PROMETHEUS.adoptions[0], { [NAME]: 'default' })).toBe(1);
      expect(healthy.value(PROMETHEUS.degraded[0], { [NAME]: 'default' })).toBe(0);
      expect(healthy.find(PROMETHEUS.storeErrors[0])).toEqual([]);

      // A Transfer call refused with a 401 drops the token; the renewal takes the lock again.
      fake.failNext('agents', { kind: 'status', status: 401 });
      expect((await fetch(`${url}/agents`)).status).toBe(200);
      // The store stops answering (SIGSTOP): a forced renewal waits out the store's timeout, then renews alone.
      await redis.pause();
      await auth.forceRefresh();
      // The renewal gave up on the store at its budget (1.5 s); the store is judged on its bound (2 s).
      await new Promise((resolve) => setTimeout(resolve, 600));
      const degraded = await scrape(url);

      for (const [metric, type] of Object.values(PROMETHEUS)) {
        expect({ metric, type: degraded.types.get(metric) }).toEqual({ metric, type });
      }
      expect(degraded.value(PROMETHEUS.degraded[0], { [NAME]: 'default' })).toBe(1);
      expect(degraded.value(PROMETHEUS.locks[0], { [NAME]: 'default', [OUTCOME]: 'acquired' })).toBe(2);
      // The renewal reads the store first: that read timed out, so it logged in alone, without the lock
      // (a refresh token in a store it cannot lock is not its to use).
      expect(
        degraded.value(PROMETHEUS.storeErrors[0], {
          [NAME]: 'default',
          freedompay_transfer_auth_store_operation: 'read',
          error_type: 'timeout',
        }),
        // Another read of the paused store (its watch) may time out too on a loaded machine.
      ).toBeGreaterThanOrEqual(1);
      const renewals = PROMETHEUS.renewals[0];
      // Startup and the degraded renewal logged in; the renewal after the 401 refreshed, under the lock.
      expect(degraded.value(renewals, { [NAME]: 'default', [KIND]: 'login', [OUTCOME]: 'ok' })).toBe(2);
      expect(degraded.value(renewals, { [NAME]: 'default', [KIND]: 'refresh', [OUTCOME]: 'ok' })).toBe(1);
      expect(degraded.value(PROMETHEUS.invalidations[0], { [NAME]: 'default', [OUTCOME]: 'dropped' })).toBe(1);
      expect(degraded.value(PROMETHEUS.accessTimeLeft[0], { [NAME]: 'default' })).toBeGreaterThan(3_500);
      expect(degraded.ours().filter((s) => s.labels[NAME] !== 'default')).toEqual([]);
      expect(leakedSecrets(degraded.text + healthy.text, secretsOf(fake))).toEqual([]);
      expect(degraded.text).not.toContain(fake.agentId);
      await redis.resume();
    });
  });

  it('names every instrument of the package (METRIC) in its Prometheus form', () => {
    expect(Object.keys(PROMETHEUS).sort()).toEqual(Object.keys(METRIC).sort());
    for (const [key, [metric, type]] of Object.entries(PROMETHEUS)) {
      const otel = METRIC[key as keyof typeof METRIC].replace(/\./g, '_');
      expect(metric).toBe(type === 'counter' ? `${otel}_total` : otel);
    }
  });
});
