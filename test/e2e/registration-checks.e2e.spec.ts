import { Logger, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TransferAuthModule, type TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { CapturingLogger } from '../support/auth-app';
import { captureAuthError } from '../support/e2e';

describe('registrations: which one failed, and the same agent registered twice', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;
  let logger: CapturingLogger;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
    logger = new CapturingLogger();
    Logger.overrideLogger(logger);
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  function options(overrides: Partial<TransferAuthModuleOptions> = {}): TransferAuthModuleOptions {
    return { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url, ...overrides };
  }

  async function boot(root: unknown): Promise<void> {
    app = await NestFactory.createApplicationContext(root as never, { logger, abortOnError: false });
  }

  it('INVALID_CONFIG names the registration that failed (finding 2), never the value', async () => {
    @Module({
      imports: [
        TransferAuthModule.forRoot({ ...options(), name: 'kzt' }),
        TransferAuthModule.forRoot({ ...options({ agentSecret: '' }), name: 'usd' }),
      ],
    })
    class TwoAgents {}
    const error = await captureAuthError(boot(TwoAgents));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(
      'Invalid TransferAuthModule option `agentSecret` (registration `usd`): it must not be empty.',
    );
  });

  it('the unnamed registration is named as such', async () => {
    @Module({ imports: [TransferAuthModule.forRoot(options({ baseUrl: 'ftp://x' }))] })
    class OneAgent {}
    const error = await captureAuthError(boot(OneAgent));
    expect(error.message).toMatch(/option `baseUrl` \(the unnamed registration\)/);
  });

  it('the same agent registered twice (global, and copied into a feature module): one warning naming both (finding 4)', async () => {
    @Module({ imports: [TransferAuthModule.forRoot(options())] })
    class FeatureModule {}
    @Module({ imports: [TransferAuthModule.forRoot({ ...options(), isGlobal: true }), FeatureModule] })
    class AppModule {}
    await boot(AppModule);
    const warnings = logger.lines.filter((line) => /registered twice/.test(line));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`agent \`${fake.agentId}\``);
    expect(warnings[0]).toMatch(/the unnamed registration and the unnamed registration/);
    expect(warnings[0]).not.toContain(fake.agentSecret);
  });

  it('named twins are named; different agents or base URLs do not warn', async () => {
    @Module({
      imports: [
        TransferAuthModule.forRoot({ ...options(), name: 'a' }),
        TransferAuthModule.forRoot({ ...options(), name: 'b' }),
        TransferAuthModule.forRoot({ ...options({ agentId: 'other-agent' }), name: 'c', fetchOnStartup: false }),
      ],
    })
    class AppModule {}
    await boot(AppModule);
    const warnings = logger.lines.filter((line) => /registered twice/.test(line));
    expect(warnings).toEqual([expect.stringMatching(/registration `a` and registration `b`/)]);
  });
});
