import { Logger } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Test, type TestingModule } from '@nestjs/testing';
import { getTransferAuthToken, TransferAuthModule, type TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { sleep } from '../support/e2e';

/** Finding 3 (probes): 0.1.0 made 19 upstream calls in 6 s of 503s with no probe, 63 with a probe every 250 ms. */
describe('health probes in an outage never start extra upstream calls', () => {
  let fake: FakeTransferServer;
  let moduleRef: TestingModule | undefined;

  beforeEach(async () => {
    Logger.overrideLogger(false);
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await moduleRef?.close();
    moduleRef = undefined;
    await fake.stop();
    Logger.overrideLogger(['log', 'error', 'warn']);
  });

  /** Upstream calls in `ms` of 503s, with a health probe every `probeEveryMs` (0: none). */
  async function callsDuringOutage(probeEveryMs: number, ms: number): Promise<{ calls: number; downs: number }> {
    fake.resetCounters();
    fake.failAlways('any', { kind: 'status', status: 503 });
    moduleRef = await Test.createTestingModule({
      imports: [
        TerminusModule,
        TransferAuthModule.forRoot({
          agentId: fake.agentId,
          agentSecret: fake.agentSecret,
          baseUrl: fake.url,
          retry: { baseDelayMs: 200, maxDelayMs: 1_000 },
        }),
      ],
      providers: [TransferAuthHealthIndicator],
    }).compile();
    await moduleRef.init(); // one attempt at startup, then the background backs off
    const indicator = moduleRef.get(TransferAuthHealthIndicator);
    let downs = 0;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (probeEveryMs > 0) {
        const result = await indicator.isHealthy('freedompay', { timeoutMs: 100 });
        if (result['freedompay']?.status === 'down') downs++;
      }
      await sleep(probeEveryMs > 0 ? probeEveryMs : 50);
    }
    const calls = fake.calls.total;
    // No token all along: failed between renewals, acquiring while one makes its attempts (retry.maxAttempts).
    expect(['failed', 'acquiring']).toContain(
      moduleRef.get<TransferAuthService>(getTransferAuthToken()).getStatus().state,
    );
    await moduleRef.close();
    moduleRef = undefined;
    fake.clearFaults();
    return { calls, downs };
  }

  it('a probe every 100 ms during 3 s of 503s: as many upstream calls as with no probe (within one)', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5); // the same jitter in both runs
    const idle = await callsDuringOutage(0, 3_000);
    const probed = await callsDuringOutage(100, 3_000);
    expect(probed.downs).toBeGreaterThan(10);
    expect(idle.calls).toBeGreaterThan(2);
    // The two runs may differ by an attempt or two where the 3 s window cuts a renewal (a loaded machine's
    // timers run late), never by the probes (about 25 here).
    expect(Math.abs(probed.calls - idle.calls)).toBeLessThanOrEqual(2);
  }, 20_000);
});
