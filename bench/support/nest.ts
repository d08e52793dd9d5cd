import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  getTransferAuthToken,
  TransferAuthModule,
  type TransferAuthModuleOptions,
  type TransferAuthService,
} from '../../lib/index';

/** A real Nest application context with the module registered, initialised (first token fetched). */
export interface AuthContext {
  readonly app: INestApplicationContext;
  readonly auth: TransferAuthService;
  close(): Promise<void>;
}

/** `name`: the registration's name (`forRoot({ ..., name })`), which telemetry carries as an attribute. */
export async function createAuthContext(options: TransferAuthModuleOptions, name?: string): Promise<AuthContext> {
  const app = await NestFactory.createApplicationContext(TransferAuthModule.forRoot({ ...options, name }), {
    logger: false,
  });
  return { app, auth: app.get<TransferAuthService>(getTransferAuthToken(name)), close: () => app.close() };
}
