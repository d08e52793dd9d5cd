import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TransferAuthModule, TransferAuthService, type TransferAuthModuleOptions } from '../../lib/index';

/** A real Nest application context with the module registered, initialised (first token fetched). */
export interface AuthContext {
  readonly app: INestApplicationContext;
  readonly auth: TransferAuthService;
  close(): Promise<void>;
}

export async function createAuthContext(options: TransferAuthModuleOptions): Promise<AuthContext> {
  const app = await NestFactory.createApplicationContext(TransferAuthModule.forRoot(options), { logger: false });
  return { app, auth: app.get(TransferAuthService), close: () => app.close() };
}
