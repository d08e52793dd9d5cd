// transfer-errors.module.ts
import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TransferAuthErrorFilter } from 'nestjs-freedompay-transfer-auth';

// Imported once (e.g. by AppModule): a TransferAuthError from any route is answered 503, 502 or 500.
@Module({ providers: [{ provide: APP_FILTER, useClass: TransferAuthErrorFilter }] })
export class TransferErrorsModule {}
