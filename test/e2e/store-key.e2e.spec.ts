import { Logger } from '@nestjs/common';
import { InProcessTokenStore, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

describe('regression (0.2 review): the store key ignores the secret: a process with a wrong secret is handed the token', () => {
  let fake: FakeTransferServer;
  const services: TransferAuthService[] = [];
  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    for (const s of services.splice(0)) s.onApplicationShutdown();
    await fake.stop();
  });

  it('"processes with different secrets use separate key spaces"', async () => {
    const store = new InProcessTokenStore(); // stands for the shared (Redis) store of the fleet
    const make = (agentSecret: string): TransferAuthService => {
      const s = new TransferAuthService({ agentId: fake.agentId, agentSecret, baseUrl: fake.url, store });
      services.push(s);
      return s;
    };
    const good = make(fake.agentSecret);
    await good.onModuleInit();
    const wrong = make('not-the-secret'); // revoked, mistyped, or another tenant's config
    // Current: init succeeds and the token is served: the key is sha256(baseUrl, agentId) only.
    await expect(wrong.onModuleInit()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
  });
});
