import { Inject, Module, Optional, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { TransferAuthModule, type TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AuthStatusController } from './auth-status.controller';
import { freedompayConfig, type FreedomPayConfig } from './freedompay.config';

export interface AppModuleOptions {
  /** A running fake upstream to use instead of the `freedompay` config. It is stopped on shutdown. */
  embeddedFake?: FakeTransferServer;
}

@Module({})
export class AppModule implements OnApplicationShutdown {
  static forRoot({ embeddedFake }: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // main.ts picks the upstream from the process environment, so the config reads that one too.
        ConfigModule.forRoot({ ignoreEnvFile: true }),
        TransferAuthModule.forRootAsync({
          imports: [ConfigModule.forFeature(freedompayConfig)],
          inject: [freedompayConfig.KEY],
          useFactory: (config: FreedomPayConfig): TransferAuthModuleOptions =>
            embeddedFake
              ? { agentId: embeddedFake.agentId, agentSecret: embeddedFake.agentSecret, baseUrl: embeddedFake.url }
              : { agentId: config.agentId, agentSecret: config.agentSecret, baseUrl: config.baseUrl },
        }),
      ],
      controllers: [AuthStatusController],
      providers: embeddedFake ? [{ provide: FakeTransferServer, useValue: embeddedFake }] : [],
    };
  }

  constructor(@Optional() @Inject(FakeTransferServer) private readonly embeddedFake?: FakeTransferServer) {}

  async onApplicationShutdown(): Promise<void> {
    await this.embeddedFake?.stop();
  }
}
