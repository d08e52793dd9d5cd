import { Test } from '@nestjs/testing';
import {
  AGENTS_PATH,
  TransferAuthModule,
  TransferAuthService,
  TransferHttpService,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer, type FakeFault } from 'nestjs-freedompay-transfer-auth/testing';
import { firstValueFrom } from 'rxjs';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { SecretGuard } from '../support/secret-guard';

/**
 * Regression tests for bugs the reliability work found (a Promise API throwing synchronously, tokens
 * printable from TransferHttpService responses and errors). Each states the contract it protects.
 */
describe('TransferAuthService: a Promise API never throws synchronously', () => {
  it('getAccessToken(), forceRefresh() and getAuthorizationHeader() reject with INVALID_CONFIG before init', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [TransferAuthModule.forRoot({ agentId: 'agent', agentSecret: 'secret', baseUrl: 'ftp://example.com' })],
    }).compile();
    try {
      const auth = moduleRef.get(TransferAuthService);
      for (const call of [
        () => auth.getAccessToken(),
        () => auth.forceRefresh(),
        () => auth.getAuthorizationHeader(),
      ]) {
        let result: Promise<string> | undefined;
        expect(() => (result = call())).not.toThrow();
        await expect(result).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
      }
    } finally {
      await moduleRef.close();
    }
  });
});

describe('TransferHttpService: no token in what a call hands back', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
    app = await createAuthApp(fakeOptions(fake));
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  const get = (): Promise<unknown> => firstValueFrom((app as AuthApp).app.get(TransferHttpService).get(AGENTS_PATH));

  it('a successful response: inspect() and JSON.stringify() do not show the token', async () => {
    const guard = new SecretGuard();
    guard.value('response', await get());
    expect(guard.leaks(fake.issuedTokens())).toEqual([]);
  });

  it('failed calls: no inspect() of the error shows the token, hidden fields included', async () => {
    const guard = new SecretGuard();
    const faults: FakeFault[] = [{ kind: 'status', status: 500 }, { kind: 'reset' }, { kind: 'reset-mid-body' }];
    for (const fault of faults) {
      fake.failNext('agents', fault);
      await get().catch((error: unknown) => guard.error(`agents: ${fault.kind}`, error));
    }
    fake.failNext('agents', { kind: 'status', status: 401 }, 2);
    await get().catch((error: unknown) => guard.error('401, renewed, 401 again', error));
    expect(guard.size).toBeGreaterThan(20);
    expect(guard.leaks(fake.issuedTokens())).toEqual([]);
  });
});
