// payments.module.spec.ts
import { Test, type TestingModule } from '@nestjs/testing';
import { TransferAuthError, TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { filter, firstValueFrom } from 'rxjs';
import { PaymentsService } from './payments.module.js';

describe('PaymentsService', () => {
  let fake: FakeTransferServer;
  let moduleRef: TestingModule | undefined;

  async function boot(agentSecret = fake.agentSecret): Promise<TestingModule> {
    const ref = await Test.createTestingModule({
      imports: [
        TransferAuthModule.forRoot({
          agentId: fake.agentId,
          agentSecret,
          baseUrl: fake.url,
          retry: { baseDelayMs: 10, maxDelayMs: 50 }, // fast retries keep failure tests quick
        }),
      ],
      providers: [PaymentsService],
    }).compile();
    await ref.init(); // the first token is fetched here; a failed init leaves nothing running
    moduleRef = ref;
    return ref;
  }

  beforeEach(async () => {
    fake = await new FakeTransferServer().start(); // a real HTTP server on 127.0.0.1, any free port
  });
  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
    await fake.stop();
  });

  it('sends a token the upstream accepts, fetched once for concurrent callers', async () => {
    const payments = (await boot()).get(PaymentsService);
    const [first, second] = await Promise.all([payments.transferHeaders(), payments.transferHeaders()]);
    expect(fake.isAccessTokenValid(first.Authorization.slice('Bearer '.length))).toBe(true);
    expect(second).toEqual(first);
    expect(fake.calls.auth).toBe(1);
  });

  it('starts during an outage, and recovers on its own', async () => {
    fake.failAlways('auth', { kind: 'status', status: 503 });
    const ref = await boot(); // an unreachable upstream does not fail the start
    await expect(ref.get(PaymentsService).transferHeaders()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    const auth = ref.get(TransferAuthService);
    const recovered = firstValueFrom(auth.events$.pipe(filter((event) => event.type === 'token.acquired')));
    fake.clearFaults();
    await recovered; // the background retries within retry.maxDelayMs
    expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
  });

  it('fails the start on bad credentials', async () => {
    const start = boot('wrong-secret');
    await expect(start).rejects.toThrow(TransferAuthError);
    await expect(start).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
  });
});
