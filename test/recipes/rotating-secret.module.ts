// rotating-secret.module.ts
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { TransferAuthModule } from 'nestjs-freedompay-transfer-auth';
import { secretFromFile } from './agent-secret.providers.js';

@Module({
  imports: [
    ConfigModule.forRoot(),
    TransferAuthModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        agentId: config.getOrThrow<string>('FREEDOMPAY_AGENT_ID'),
        // A Kubernetes secret mounted as a file: read before every login, so a rotation needs no restart.
        agentSecret: secretFromFile(config.getOrThrow<string>('FREEDOMPAY_AGENT_SECRET_FILE')),
        baseUrl: config.get<string>('FREEDOMPAY_BASE_URL'),
      }),
      isGlobal: true,
    }),
  ],
})
export class RotatingSecretModule {}
