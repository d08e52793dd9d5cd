import { summary, type Fleet, type FleetFigures } from './fleet';

/** A token is served at least this share of its lifetime before it is replaced (a lone process: about 0.6). */
const SERVICE_LIFE_FLOOR = 0.45;

/**
 * Checks the counts every fleet run must meet; on any miss prints the evidence (per-process counts, the
 * fake's timeline, the children's warnings) before Jest reports the first failing expectation.
 */

export function expectFleet(
  f: FleetFigures,
  fleet: Fleet,
  limits: { maxPerLifetime?: number; minPerLifetime?: number; maxWaitMs: number },
): void {
  const misses = [
    limits.maxPerLifetime !== undefined && f.perLifetime > limits.maxPerLifetime,
    limits.minPerLifetime !== undefined && f.perLifetime <= limits.minPerLifetime,
    f.expiredHandedOut !== 0,
    f.unknownTokens !== 0,
    f.refreshReused !== 0,
    f.callerErrors !== 0,
    f.maxWaitMs > limits.maxWaitMs,
    // Not circular: a fleet that renewed its one token too often would serve each for less than a lone
    // process does (1.4 to 2.2 s of a 3 s token), and still score about 1 per lifetime.
    f.serviceLifeMs < SERVICE_LIFE_FLOOR * fleet.fake.accessTtlMs,
  ];
  // FLEET_EVIDENCE=1 prints it for passing runs too.
  if (misses.some(Boolean) || process.env.FLEET_EVIDENCE === '1') console.log(`${summary(f)}\n${fleet.evidence()}`);
  if (limits.maxPerLifetime !== undefined) expect(f.perLifetime).toBeLessThanOrEqual(limits.maxPerLifetime);
  if (limits.minPerLifetime !== undefined) expect(f.perLifetime).toBeGreaterThan(limits.minPerLifetime);
  expect(f.serviceLifeMs).toBeGreaterThanOrEqual(SERVICE_LIFE_FLOOR * fleet.fake.accessTtlMs);
  expect(f.expiredHandedOut).toBe(0);
  expect(f.unknownTokens).toBe(0);
  expect(f.refreshReused).toBe(0);
  expect(f.errors).toEqual({});
  expect(f.maxWaitMs).toBeLessThanOrEqual(limits.maxWaitMs);
}
