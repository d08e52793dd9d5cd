// main.ts
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks(); // SIGINT/SIGTERM: timers cleared, requests aborted, waiting callers get SHUTDOWN
  await app.listen(process.env.PORT ?? 3000);
}
void bootstrap();
