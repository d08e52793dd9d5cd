import { harness, type Harness } from './support/stub-endpoint';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** Stub token: 10 min with a Date header; stale at lifetime - 1 s - 60 s margin. */
const STALE_AT = 600_000 - 1_000 - 60_000;

describe('TokenLifecycle hot path: the clocks are read once per event-loop turn', () => {
  let h: Harness;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    h?.lifecycle.close();
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  async function cachedLifecycle(): Promise<string> {
    h = harness();
    await h.lifecycle.start();
    const token = await h.lifecycle.getAccessToken();
    await jest.advanceTimersByTimeAsync(0); // end the turn of the first call
    return token;
  }

  it('serves 10,000 cached calls in one turn with a single read of each clock and no call', async () => {
    const token = await cachedLifecycle();
    const mono = jest.spyOn(performance, 'now');
    const wall = jest.spyOn(Date, 'now');
    const first = h.lifecycle.getAccessToken();
    for (let i = 0; i < 10_000; i++) expect(h.lifecycle.getAccessToken()).toBe(first);
    expect(await first).toBe(token);
    expect(mono).toHaveBeenCalledTimes(1);
    expect(wall).toHaveBeenCalledTimes(1);
    expect(h.stub.count).toBe(1);
  });

  it('reads the clocks again in the next turn, so a token that went stale meanwhile is renewed', async () => {
    const old = await cachedLifecycle();
    expect(await h.lifecycle.getAccessToken()).toBe(old);
    await jest.advanceTimersByTimeAsync(0);
    jest.setSystemTime(T0 + STALE_AT + 1); // the wall clock jumps (a suspend); the schedule is not due
    expect(await h.lifecycle.getAccessToken()).toBe(old); // stale but usable: served at once ...
    expect(h.stub.count).toBe(2); // ... while one renewal starts
    expect(h.stub.last().kind).toBe('refresh');
  });

  it('never serves the shortcut of a token that was replaced or dropped in the same turn', async () => {
    const old = await cachedLifecycle();
    expect(await h.lifecycle.getAccessToken()).toBe(old);
    h.lifecycle.invalidate(old); // same turn: the shortcut must go with the token
    const next = h.lifecycle.getAccessToken();
    expect(h.stub.count).toBe(2);
    await jest.advanceTimersByTimeAsync(0);
    expect(await next).not.toBe(old);
  });
});
