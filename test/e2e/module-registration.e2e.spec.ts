import {
  Injectable,
  Module,
  type ConfigurableModuleOptionsFactory,
  type INestApplicationContext,
  type ModuleMetadata,
} from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { inspect } from 'node:util';
import {
  TRANSFER_AUTH_MODULE_OPTIONS,
  TransferAuthModule,
  TransferAuthService,
  type TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { CapturingLogger, fakeOptions } from '../support/auth-app';

/** The fake of the running test, for option factories that Nest instantiates itself. */
let fake: FakeTransferServer;
let app: INestApplicationContext | undefined;

@Injectable()
class TransferOptionsFactory implements ConfigurableModuleOptionsFactory<
  TransferAuthModuleOptions,
  'createTransferAuthOptions'
> {
  static created = 0;
  calls = 0;
  constructor() {
    TransferOptionsFactory.created++;
  }
  createTransferAuthOptions(): TransferAuthModuleOptions {
    this.calls++;
    return fakeOptions(fake);
  }
}

@Module({ providers: [TransferOptionsFactory], exports: [TransferOptionsFactory] })
class OptionsModule {}

@Injectable()
class FeatureService {
  constructor(readonly auth: TransferAuthService) {}
  async authorization(): Promise<string> {
    return this.auth.getAuthorizationHeader();
  }
}

/** Does not import TransferAuthModule: it can inject the service only when the module is global. */
@Module({ providers: [FeatureService], exports: [FeatureService] })
class FeatureModule {}

async function boot(imports: NonNullable<ModuleMetadata['imports']>): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({ imports }).setLogger(new CapturingLogger()).compile();
  app = moduleRef;
  await moduleRef.init();
  return moduleRef;
}

/** The module was configured with the fake's credentials, and they work. */
async function expectWorkingAuth(context: INestApplicationContext): Promise<void> {
  const auth = context.get(TransferAuthService);
  const token = await auth.getAccessToken();
  expect(fake.isAccessTokenValid(token)).toBe(true);
  expect(fake.calls.auth).toBe(1);
  expect(JSON.parse(fake.requests[0]?.body ?? '{}')).toEqual({
    agent_id: fake.agentId,
    agent_secret: fake.agentSecret,
  });
}

describe('TransferAuthModule registration (e2e)', () => {
  beforeEach(async () => {
    fake = await new FakeTransferServer({ agentId: `agent-${Math.random().toString(36).slice(2)}` }).start();
    TransferOptionsFactory.created = 0;
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  it('forRoot(options) provides TransferAuthService and fetches a token at init', async () => {
    const context = await boot([TransferAuthModule.forRoot(fakeOptions(fake))]);
    await expectWorkingAuth(context);
  });

  it('forRootAsync with useFactory reads the options from ConfigModule through inject', async () => {
    const context = await boot([
      ConfigModule.forRoot({
        ignoreEnvFile: true,
        load: [() => ({ transfer: { id: fake.agentId, secret: fake.agentSecret, url: fake.url } })],
      }),
      TransferAuthModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => ({
          agentId: config.getOrThrow<string>('transfer.id'),
          agentSecret: config.getOrThrow<string>('transfer.secret'),
          baseUrl: config.getOrThrow<string>('transfer.url'),
        }),
      }),
    ]);
    await expectWorkingAuth(context);
  });

  it('forRootAsync with an async useFactory is awaited before init', async () => {
    const context = await boot([
      TransferAuthModule.forRootAsync({
        useFactory: async () => {
          await Promise.resolve();
          return fakeOptions(fake);
        },
      }),
    ]);
    await expectWorkingAuth(context);
  });

  it('forRootAsync with useClass instantiates the factory class and calls createTransferAuthOptions', async () => {
    const context = await boot([TransferAuthModule.forRootAsync({ useClass: TransferOptionsFactory })]);
    await expectWorkingAuth(context);
    expect(TransferOptionsFactory.created).toBe(1);
  });

  it('forRootAsync with useExisting reuses the factory exported by an imported module', async () => {
    const context = await boot([
      OptionsModule,
      TransferAuthModule.forRootAsync({ imports: [OptionsModule], useExisting: TransferOptionsFactory }),
    ]);
    await expectWorkingAuth(context);
    expect(TransferOptionsFactory.created).toBe(1);
    expect(context.get(TransferOptionsFactory).calls).toBe(1);
  });

  it('the options provider hides the secret from JSON and inspect', async () => {
    const context = await boot([TransferAuthModule.forRoot(fakeOptions(fake))]);
    const options = context.get<TransferAuthModuleOptions>(TRANSFER_AUTH_MODULE_OPTIONS);
    expect(options.agentSecret).toBe(fake.agentSecret); // still usable ...
    expect(JSON.stringify(options)).not.toContain(fake.agentSecret); // ... but never printed
    expect(inspect(options)).not.toContain(fake.agentSecret);
  });

  it('isGlobal (forRootAsync): a module that does not import TransferAuthModule injects the service', async () => {
    @Module({
      imports: [
        TransferAuthModule.forRootAsync({ isGlobal: true, useFactory: () => fakeOptions(fake) }),
        FeatureModule,
      ],
    })
    class AppModule {}

    const context = await NestFactory.createApplicationContext(AppModule, {
      logger: new CapturingLogger(),
      abortOnError: false,
    });
    app = context;
    const feature = context.get(FeatureService);
    expect(feature.auth).toBe(context.get(TransferAuthService));
    const header = await feature.authorization();
    expect(header).toMatch(/^Bearer /);
    expect(fake.isAccessTokenValid(header.slice('Bearer '.length))).toBe(true);
    expect(fake.calls.auth).toBe(1);
  });

  it('isGlobal (forRoot) works the same way', async () => {
    const context = await boot([TransferAuthModule.forRoot({ ...fakeOptions(fake), isGlobal: true }), FeatureModule]);
    expect(context.get(FeatureService).auth).toBe(context.get(TransferAuthService));
  });

  it('without isGlobal, a module that does not import TransferAuthModule cannot inject the service', async () => {
    await expect(
      Test.createTestingModule({
        imports: [TransferAuthModule.forRootAsync({ useFactory: () => fakeOptions(fake) }), FeatureModule],
      })
        .setLogger(new CapturingLogger())
        .compile(),
    ).rejects.toThrow(/FeatureService/);
    expect(fake.calls.total).toBe(0);
  });
});
