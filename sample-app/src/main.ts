import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DEFAULT_BASE_URL } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AppModule } from './app.module';
import { freedompayConfig, type FreedomPayConfig } from './freedompay.config';
import { startMetrics } from './metrics';

const logger = new Logger('SampleApp');

/**
 * Starts the app on `PORT` (3000). Without credentials it runs against embedded fakes (a second one for
 * the second, `usd`, agent), so `npm start` works out of the box. With `REDIS_URL`, the token is shared
 * through Redis with every other process using it (`npm run start:fleet` starts four). The OpenTelemetry
 * metrics SDK is registered first, before the app is created, and `GET /metrics` serves its Prometheus view.
 */
export async function bootstrap(upstreamLabel?: string): Promise<void> {
  const fake = process.env.FREEDOMPAY_AGENT_ID ? undefined : await new FakeTransferServer().start();
  const usdFake = fake ? await new FakeTransferServer({ agentId: 'fake-agent-usd' }).start() : undefined;
  const redisUrl = process.env.REDIS_URL || undefined;
  // Before NestFactory.create: the package takes its meter from the global provider as it initialises.
  const metrics = startMetrics();
  try {
    const app = await NestFactory.create(
      AppModule.forRoot({ embeddedFake: fake, embeddedUsdFake: usdFake, redisUrl, metrics }),
      {
        abortOnError: false,
      },
    );
    app.enableShutdownHooks();
    const port = Number(process.env.PORT ?? 3000);
    await app.listen(port);
    const upstream = fake
      ? `embedded FakeTransferServer at ${fake.url} (set FREEDOMPAY_AGENT_ID, FREEDOMPAY_AGENT_SECRET and FREEDOMPAY_BASE_URL to use Freedom Pay)`
      : (upstreamLabel ??
        `Freedom Pay at ${app.get<FreedomPayConfig>(freedompayConfig.KEY).baseUrl ?? DEFAULT_BASE_URL}`);
    const store = redisUrl ? `shared through Redis at ${new URL(redisUrl).host}` : 'kept in this process';
    logger.log(
      `Listening on http://localhost:${port}, upstream: ${upstream}; token ${store}. Try GET /auth/status, /agents, /health, /metrics`,
    );
  } catch (error) {
    await Promise.all([fake?.stop(), usdFake?.stop(), metrics.shutdown()]);
    throw error;
  }
}

if (require.main === module) {
  bootstrap().catch((error: unknown) => {
    logger.error(`Failed to start: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
