import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DEFAULT_BASE_URL } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AppModule } from './app.module';
import { freedompayConfig, type FreedomPayConfig } from './freedompay.config';

const logger = new Logger('SampleApp');

async function bootstrap(): Promise<void> {
  // Without credentials, run against an embedded fake upstream: `npm start` works out of the box.
  // Without credentials, run against embedded fakes (a second one for the second, `usd`, agent).
  const fake = process.env.FREEDOMPAY_AGENT_ID ? undefined : await new FakeTransferServer().start();
  const usdFake = fake ? await new FakeTransferServer({ agentId: 'fake-agent-usd' }).start() : undefined;
  try {
    const app = await NestFactory.create(AppModule.forRoot({ embeddedFake: fake, embeddedUsdFake: usdFake }), {
      abortOnError: false,
    });
    app.enableShutdownHooks();
    const port = Number(process.env.PORT ?? 3000);
    await app.listen(port);
    const upstream = fake
      ? `embedded FakeTransferServer at ${fake.url} (set FREEDOMPAY_AGENT_ID, FREEDOMPAY_AGENT_SECRET and FREEDOMPAY_BASE_URL to use Freedom Pay)`
      : `Freedom Pay at ${app.get<FreedomPayConfig>(freedompayConfig.KEY).baseUrl ?? DEFAULT_BASE_URL}`;
    logger.log(`Listening on http://localhost:${port}, upstream: ${upstream}. Try GET /auth/status, /agents, /health`);
  } catch (error) {
    await Promise.all([fake?.stop(), usdFake?.stop()]);
    throw error;
  }
}

bootstrap().catch((error: unknown) => {
  logger.error(`Failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
