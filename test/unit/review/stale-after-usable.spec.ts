import { answer, flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { T0, useFakeClock } from '../lifecycle/support';

describe('regression (0.2 review): toCachedToken\'s "already stale on arrival" path can put staleAt after usableUntil', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('a token is never served once either clock is past its usable end (wall stepped forward mid-request)', async () => {
    h = harness({ fetchOnStartup: false }, answer.pending());
    h.stub.trueNow = () => T0; // the upstream's clock: the request is answered at T0
    const first = outcome(h.lifecycle.getAccessToken()); // sent at T0 (wall), m0 (mono)
    await flush();
    jest.setSystemTime(T0 + 16_000); // a suspend (or NTP step) while the request is out: wall +16 s, mono +0
    h.stub.last().succeed({ lifetimeMs: 20_000 }); // Date: T0 -> usable 17 s from sentAt, stale at 15 s
    await flush();
    const token = first.value(); // fine: usable until T0 + 17 s on the wall, it is T0 + 16 s
    await jest.advanceTimersByTimeAsync(2_000); // wall T0 + 18 s: past usableUntil.wall
    // The fallback set staleAt = receivedAt + (usableUntil.mono - receivedAt.mono) / 2 on both clocks:
    // staleAt.wall = T0 + 24.5 s > usableUntil.wall = T0 + 17 s, and the hot path's first test only looks at
    // staleAt. Current: getStatus() already says 'idle' (not usable), but getAccessToken() serves the token
    // 1 s past its usable end on the wall clock (and would until wall T0 + 24.5 s).
    expect(h.lifecycle.getStatus().state).not.toBe('valid');
    const again = outcome(h.lifecycle.getAccessToken());
    await Promise.resolve();
    expect(again.settled() ? again.value() : 'renewing').not.toBe(token);
  });
});
