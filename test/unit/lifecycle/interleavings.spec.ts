import fc from 'fast-check';
import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import { TransferAuthError } from '../../../lib/errors/transfer-auth.error';
import { answer, harness, upstreamError, type Harness, type StubCall } from '../support/stub-endpoint';
import { T0 } from './support';

const SEED = 20_261_130;
const RUNS = 2_000;

type Action =
  | { kind: 'get' }
  | { kind: 'force' }
  | { kind: 'invalidate' }
  | { kind: 'advance'; ms: number }
  /** A suspend: true time and the wall clock move on, the monotonic clock does not. */
  | { kind: 'suspend'; ms: number }
  /** The local wall clock is stepped (NTP); true time does not move. */
  | { kind: 'wallStep'; ms: number }
  | { kind: 'succeed'; lifetimeMs: number; delayMs: number }
  | { kind: 'fail'; code: 'UPSTREAM_UNAVAILABLE' | 'INVALID_CREDENTIALS' | 'INVALID_RESPONSE'; retryAfterMs?: number }
  | { kind: 'close' };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'get' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'force' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'invalidate' } as const) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 120_000 }).map((ms) => ({ kind: 'advance', ms }) as const) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3_600_000 }).map((ms) => ({ kind: 'suspend', ms }) as const) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: -86_400_000, max: 86_400_000 }).map((ms) => ({ kind: 'wallStep', ms }) as const),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        lifetimeMs: fc.constantFrom(2_000, 10_000, 60_000, 600_000, 86_400_000),
        delayMs: fc.constantFrom(0, 0, 500, 3_000),
      })
      .map((r) => ({ kind: 'succeed', ...r }) as const),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        code: fc.constantFrom('UPSTREAM_UNAVAILABLE', 'INVALID_CREDENTIALS', 'INVALID_RESPONSE') as fc.Arbitrary<
          'UPSTREAM_UNAVAILABLE' | 'INVALID_CREDENTIALS' | 'INVALID_RESPONSE'
        >,
        retryAfterMs: fc.option(fc.integer({ min: 0, max: 400_000 }), { nil: undefined }),
      })
      .map((r) => ({ kind: 'fail', ...r }) as const),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' } as const) },
);

describe('random interleavings never hand out a token past its usable end', () => {
  let h: Harness | undefined;
  afterEach(() => {
    h?.lifecycle.close();
    h = undefined;
    jest.useRealTimers();
  });

  it(`calls, invalidations, forced refreshes, failures, suspends, clock steps and close (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: -86_400_000, max: 86_400_000 }),
        fc.boolean(),
        async (actions, skewMs, shared) => {
          jest.useFakeTimers({ now: T0 });
          let wallError = 0; // how far the local wall clock is off true time
          const trueNow = (): number => Date.now() - wallError;
          h?.lifecycle.close();
          const one = (h = harness(
            {
              fetchOnStartup: false,
              retry: { baseDelayMs: 100, maxDelayMs: 5_000 },
              ...(shared ? { store: new InProcessTokenStore() } : {}),
            },
            answer.pending(),
          ));
          one.stub.skewMs = skewMs;
          one.stub.trueNow = trueNow;
          const violations: string[] = [];
          let closed = false;
          let lastToken: string | undefined;

          const check = (promise: Promise<string>, calledAt: number): void => {
            promise.then(
              (token) => {
                lastToken = token;
                const issued = one.stub.issued.get(token);
                if (issued === undefined) return void violations.push('a token the upstream never issued');
                const usableEnd = issued.trueExpiresAtMs - Math.min(5_000, issued.lifetimeMs * 0.1);
                const at = Math.max(calledAt, trueNow()); // handed out now: usable now (and so at the call)
                if (at >= usableEnd) violations.push(`${token} handed out ${at - usableEnd} ms past its usable end`);
                if (closed) violations.push('a token after close');
              },
              (error: unknown) => {
                if (!(error instanceof TransferAuthError)) violations.push(`not a TransferAuthError: ${String(error)}`);
              },
            );
          };
          const oldest = (): StubCall | undefined => one.stub.pending()[0];

          for (const a of actions) {
            switch (a.kind) {
              case 'get':
                check(one.lifecycle.getAccessToken(), trueNow());
                break;
              case 'force':
                check(one.lifecycle.forceRefresh(), trueNow());
                break;
              case 'invalidate':
                one.lifecycle.invalidate(lastToken);
                break;
              case 'advance':
                await jest.advanceTimersByTimeAsync(a.ms);
                break;
              case 'suspend':
                jest.setSystemTime(Date.now() + a.ms);
                break;
              case 'wallStep':
                jest.setSystemTime(Date.now() + a.ms);
                wallError += a.ms;
                break;
              case 'succeed':
                oldest()?.succeed({ lifetimeMs: a.lifetimeMs }, a.delayMs);
                break;
              case 'fail':
                oldest()?.fail(upstreamError(a.code, a.code === 'INVALID_CREDENTIALS' ? 401 : 503, a.retryAfterMs));
                break;
              case 'close':
                one.lifecycle.close();
                closed = true;
                break;
            }
            await jest.advanceTimersByTimeAsync(0);
          }
          for (const call of one.stub.pending()) call.succeed({ lifetimeMs: 60_000 });
          await jest.advanceTimersByTimeAsync(10_000);
          one.lifecycle.close();
          expect(violations).toEqual([]);
          jest.useRealTimers();
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  }, 120_000);
});
