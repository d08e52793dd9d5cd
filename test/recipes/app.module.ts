// app.module.ts
import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { TransferAuthModule } from 'nestjs-freedompay-transfer-auth';
import { freedompayConfig, type FreedomPayConfig } from './freedompay.config.js';

@Module({
  imports: [
    ConfigModule.forRoot(),
    TransferAuthModule.forRootAsync({
      imports: [ConfigModule.forFeature(freedompayConfig)],
      inject: [freedompayConfig.KEY],
      useFactory: (config: FreedomPayConfig) => ({ ...config, requestTimeoutMs: 5_000 }),
      isGlobal: true,
    }),
  ],
})
export class AppModule {}
