import { Test } from '@nestjs/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

describe('startup against FakeTransferServer', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  it('fetches a token during init and serves it from the cache afterwards', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
      ],
    }).compile();
    app = await moduleRef.init();
    expect(fake.calls.auth).toBe(1);
    const auth = app.get(TransferAuthService);
    const token = await auth.getAccessToken();
    expect(fake.isAccessTokenValid(token)).toBe(true);
    await Promise.all(Array.from({ length: 50 }, () => auth.getAccessToken()));
    expect(fake.calls.total).toBe(1);
    expect(auth.getStatus().state).toBe('valid');
  });
});
