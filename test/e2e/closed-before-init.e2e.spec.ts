import { Test } from '@nestjs/testing';
import { getTransferAuthToken, TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

describe('a service closed before init is closed for good (finding 6)', () => {
  let fake: FakeTransferServer;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await fake.stop();
  });

  function options(): { agentId: string; agentSecret: string; baseUrl: string } {
    return { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url };
  }

  it('shut down before onModuleInit: SHUTDOWN, state closed, and no upstream call, ever', async () => {
    const auth = new TransferAuthService(options());
    auth.onApplicationShutdown();
    await auth.onModuleInit();
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await expect(auth.forceRefresh()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    auth.invalidate();
    expect(auth.getStatus()).toEqual({
      state: 'closed',
      accessExpiresAt: null,
      accessTokenFingerprint: null,
      refreshExpiresAt: null,
      lastRefreshAt: null,
    });
    expect(auth.getBaseUrl()).toBe(fake.url);
    expect(fake.calls.total).toBe(0); // 0.1.0 made a call here and reported `idle`
  });

  it('a Nest module closed without init: the same', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [TransferAuthModule.forRoot(options())] }).compile();
    const auth = moduleRef.get<TransferAuthService>(getTransferAuthToken());
    await moduleRef.close();
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    expect(auth.getStatus().state).toBe('closed');
    expect(fake.calls.total).toBe(0);
  });

  it('with invalid options, still SHUTDOWN after close (not INVALID_CONFIG)', async () => {
    const auth = new TransferAuthService({ agentId: 'a', agentSecret: '' });
    auth.onApplicationShutdown();
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    expect(auth.getStatus().state).toBe('closed');
  });
});
