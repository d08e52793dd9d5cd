import type { FakeEndpoint, FakeFault, FakeFaultPolicy } from '../lib/testing';

type Maker = (endpoint: FakeEndpoint) => FakeFault | undefined;

/** The ways a soak request fails, equally likely; `undefined` from a maker means "answer normally". */
const MAKERS: readonly [string, Maker][] = [
  ['HTTP 500', () => ({ kind: 'status', status: 500 })],
  ['HTTP 502', () => ({ kind: 'status', status: 502 })],
  ['HTTP 503', () => ({ kind: 'status', status: 503 })],
  ['HTTP 504', () => ({ kind: 'status', status: 504 })],
  ['HTTP 429 + Retry-After: 1', () => ({ kind: 'status', status: 429, retryAfter: 1 })],
  ['reset', () => ({ kind: 'reset' })],
  ['reset mid-body', () => ({ kind: 'reset-mid-body' })],
  ['hang', () => ({ kind: 'hang' })],
  ['slow body', () => ({ kind: 'slow-body', ms: 2_000 })],
  ['truncated JSON', () => ({ kind: 'body', body: '{"access_token":"x","refresh_' })],
  ['HTML', () => ({ kind: 'body', body: '<html>maintenance</html>', contentType: 'text/html' })],
  ['missing field', () => ({ kind: 'fields', fields: { access_expire_at: undefined } })],
  ['refresh token rejected', (endpoint) => (endpoint === 'refresh' ? { kind: 'status', status: 401 } : undefined)],
];

/** A fault policy failing about `rate` of the requests, in random ways; counts what it injected. */
export function randomFaults(
  rate: number,
  random: () => number = Math.random,
): {
  policy: FakeFaultPolicy;
  injected: Map<string, number>;
} {
  const injected = new Map<string, number>();
  const policy: FakeFaultPolicy = (endpoint) => {
    if (random() >= rate) return undefined;
    const [name, make] = MAKERS[Math.floor(random() * MAKERS.length)] as [string, Maker];
    const fault = make(endpoint);
    if (fault !== undefined) injected.set(name, (injected.get(name) ?? 0) + 1);
    return fault;
  };
  return { policy, injected };
}
