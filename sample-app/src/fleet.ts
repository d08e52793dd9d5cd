import cluster from 'node:cluster';
import { Logger } from '@nestjs/common';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { bootstrap } from './main';

/**
 * `npm run start:fleet`: WORKERS (4) processes serving one port (`node:cluster`), sharing one token through
 * Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`), against one fake upstream started here. Every
 * worker's `/auth/status` shows the same token fingerprint, and the fake counts one renewal per token
 * lifetime (FAKE_ACCESS_TTL_MS, 60 s) for the whole fleet.
 */
const logger = new Logger('SampleFleet');

async function primary(): Promise<void> {
  const workers = Number(process.env.WORKERS ?? 4);
  const ttlMs = Number(process.env.FAKE_ACCESS_TTL_MS ?? 60_000);
  const fake = await new FakeTransferServer({ accessTtlMs: ttlMs }).start();
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const env = {
    REDIS_URL: redisUrl,
    FREEDOMPAY_AGENT_ID: fake.agentId,
    FREEDOMPAY_AGENT_SECRET: fake.agentSecret,
    FREEDOMPAY_BASE_URL: fake.url,
    SAMPLE_FLEET_UPSTREAM: `the fleet's FakeTransferServer at ${fake.url}`,
  };
  for (let i = 0; i < workers; i++) cluster.fork(env);
  logger.log(
    `${workers} workers, one token shared through Redis at ${new URL(redisUrl).host}; fake tokens live ${ttlMs} ms`,
  );
  const report = setInterval(() => {
    const { auth, refresh, refreshReused } = fake.calls;
    logger.log(
      `Upstream so far, whole fleet: ${auth} login(s), ${refresh} refresh(es), ${refreshReused} refresh token reuse(s)`,
    );
  }, ttlMs);
  report.unref();
  let alive = workers;
  cluster.on('exit', (worker, code, signal) => {
    if (signal === null && code !== 0) logger.warn(`Worker ${worker.process.pid} exited with code ${code}`);
    if (--alive === 0) {
      clearInterval(report);
      void fake.stop();
    }
  });
  // Each worker closes its app on the signal (Ctrl-C sends it to all of them anyway); the fake stops
  // with the last one.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    });
  }
}

if (cluster.isPrimary) {
  primary().catch((error: unknown) => {
    logger.error(`Failed to start: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
} else {
  bootstrap(process.env.SAMPLE_FLEET_UPSTREAM).catch((error: unknown) => {
    logger.error(`Failed to start: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
