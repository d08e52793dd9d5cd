import { Logger } from '@nestjs/common';
import { TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { parseRetryAfter } from '../../lib/token-lifecycle/backoff';

/** Matches IMF_FIXDATE's shape (\d{2} day, \d{2} hours) but is no date: Date.parse gives NaN. */
const BOGUS_DATE = 'Mon, 99 Jan 2025 00:00:00 GMT';

describe('regression (0.2 review): a Retry-After that looks like an HTTP-date but is not one becomes NaN', () => {
  it('parseRetryAfter never answers NaN', () => {
    const ms = parseRetryAfter(BOGUS_DATE, undefined, Date.now());
    expect(ms === undefined || Number.isFinite(ms)).toBe(true); // before the fix: NaN
  });

  describe('over real sockets', () => {
    let fake: FakeTransferServer;
    let auth: TransferAuthService | undefined;
    beforeAll(() => Logger.overrideLogger(false));
    beforeEach(async () => {
      fake = await new FakeTransferServer().start();
    });
    afterEach(async () => {
      auth?.onApplicationShutdown();
      await fake.stop();
    });

    it('an outage answering 503 + that header: backoff holds, callers fail fast, no hot loop', async () => {
      fake.faultPolicy = () => ({ kind: 'status', status: 503, retryAfter: BOGUS_DATE });
      auth = new TransferAuthService({
        agentId: fake.agentId,
        agentSecret: fake.agentSecret,
        baseUrl: fake.url,
        refresh: false,
        fetchOnStartup: false,
        retry: { baseDelayMs: 200, maxDelayMs: 5_000 },
      });
      await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      const afterFirst = fake.calls.auth;
      // A busy caller right after: must be answered at once, without an upstream call.
      await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      const afterSecond = fake.calls.auth;
      await new Promise((r) => setTimeout(r, 500));
      const total = fake.calls.auth;
      auth.onApplicationShutdown();
      // The bogus header is no Retry-After: a plain 503, so each renewal makes its 3 attempts (100..200 ms,
      // then 200..400 ms apart), and the policy's backoff (100..200 ms) spaces the renewals: at most two
      // renewals, 6 calls, in 0.5 s. Before the fix: NaN dueAt -> the caller was not refused and the
      // background timer re-fired after 1 ms, hundreds of Get token calls.
      expect(total).toBeLessThanOrEqual(6);
      expect([afterFirst, afterSecond]).toEqual([3, 3]);
    });
  });
});
