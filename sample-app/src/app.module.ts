import { Inject, Module, Optional, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import {
  TransferAuthModule,
  type TransferAuthModuleOptions,
  type TransferTokenStore,
} from 'nestjs-freedompay-transfer-auth';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AgentsController } from './agents.controller';
import { AuthStatusController } from './auth-status.controller';
import { freedompayConfig, USD_AGENT, type FreedomPayConfig } from './freedompay.config';
import { HealthController, USD_AGENT_ENABLED } from './health.controller';
import { SAMPLE_METRICS, type SampleMetrics } from './metrics';
import { MetricsController } from './metrics.controller';
import { STORE_KIND, TOKEN_STORE, TokenStoreModule } from './token-store';

export interface AppModuleOptions {
  /** A running fake upstream to use instead of the `freedompay` config. It is stopped on shutdown. */
  embeddedFake?: FakeTransferServer;
  /** A second running fake, for the second (`usd`) agent. It is stopped on shutdown. */
  embeddedUsdFake?: FakeTransferServer;
  /** Share the token through this Redis (`RedisTokenStore`); unset: each process keeps its own. */
  redisUrl?: string | undefined;
  /**
   * The OpenTelemetry SDK registered before the app was created (`startMetrics()`): served at
   * `GET /metrics` and shut down with the app. Unset: no `/metrics`.
   */
  metrics?: SampleMetrics | undefined;
}

const EMBEDDED_FAKES = Symbol('EMBEDDED_FAKES');

@Module({})
export class AppModule implements OnApplicationShutdown {
  static forRoot({ embeddedFake, embeddedUsdFake, redisUrl, metrics }: AppModuleOptions = {}): DynamicModule {
    const fakeOptions = (fake: FakeTransferServer): TransferAuthModuleOptions => ({
      agentId: fake.agentId,
      agentSecret: fake.agentSecret,
      baseUrl: fake.url,
    });
    // The second agent is there when it has somewhere to go: its own fake, or its own credentials.
    const usdEnabled = embeddedUsdFake !== undefined || (!embeddedFake && !!process.env.FREEDOMPAY_USD_AGENT_ID);
    const config = {
      // One module object for both agents: one Redis connection.
      imports: [ConfigModule.forFeature(freedompayConfig), TokenStoreModule.forRoot(redisUrl)],
      inject: [freedompayConfig.KEY, TOKEN_STORE],
    };
    return {
      module: AppModule,
      imports: [
        // main.ts picks the upstream from the process environment, so the config reads that one too.
        ConfigModule.forRoot({ ignoreEnvFile: true }),
        TerminusModule,
        TransferAuthModule.forRootAsync({
          ...config,
          useFactory: (c: FreedomPayConfig, store?: TransferTokenStore): TransferAuthModuleOptions => ({
            ...(embeddedFake
              ? fakeOptions(embeddedFake)
              : { agentId: c.agentId, agentSecret: c.agentSecret, baseUrl: c.baseUrl }),
            store,
          }),
        }),
        ...(usdEnabled
          ? [
              TransferAuthModule.forRootAsync({
                ...config,
                name: USD_AGENT,
                useFactory: (c: FreedomPayConfig, store?: TransferTokenStore): TransferAuthModuleOptions => ({
                  ...(embeddedUsdFake
                    ? fakeOptions(embeddedUsdFake)
                    : { agentId: c.usd.agentId, agentSecret: c.usd.agentSecret, baseUrl: c.baseUrl }),
                  store,
                }),
              }),
            ]
          : []),
      ],
      controllers: [AuthStatusController, AgentsController, HealthController, ...(metrics ? [MetricsController] : [])],
      providers: [
        TransferAuthHealthIndicator,
        { provide: STORE_KIND, useValue: redisUrl ? 'redis' : 'in-process' },
        { provide: USD_AGENT_ENABLED, useValue: usdEnabled },
        { provide: EMBEDDED_FAKES, useValue: [embeddedFake, embeddedUsdFake].filter((f) => f !== undefined) },
        ...(metrics ? [{ provide: SAMPLE_METRICS, useValue: metrics }] : []),
      ],
    };
  }

  constructor(
    @Optional() @Inject(EMBEDDED_FAKES) private readonly embeddedFakes: FakeTransferServer[] = [],
    @Optional() @Inject(SAMPLE_METRICS) private readonly metrics?: SampleMetrics,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.embeddedFakes.map((fake) => fake.stop()), this.metrics?.shutdown()]);
  }
}
