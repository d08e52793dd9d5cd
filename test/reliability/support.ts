import { TransferAuthError, type TransferAuthEvent, type TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import type { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { filter, firstValueFrom, map, take, timeout } from 'rxjs';
import type { FaultCase } from './fault-table';
import { fakeUrl } from '../support/e2e';

/** A real wait: only for e2e tests over sockets, where Jest's fake timers cannot drive the I/O. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a settled call gave: `ok`, a `TransferAuthError` code, or a description of anything else. */
export function outcomeOf(result: PromiseSettledResult<unknown>): string {
  if (result.status === 'fulfilled') return 'ok';
  const reason: unknown = result.reason;
  return reason instanceof TransferAuthError ? reason.code : `not a TransferAuthError: ${String(reason)}`;
}

/** Retries `fn` until it resolves (for recovery after a fault is cleared); rethrows after `withinMs`. */
export async function eventually<T>(fn: () => Promise<T>, withinMs = 5_000): Promise<T> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > until) throw error;
    }
    await pause(25);
  }
}

/**
 * The next event of one of `types`, with the fake's request count read at the very moment it was
 * emitted (synchronously, before any background retry can add to it).
 */
export function nextEvent(
  auth: TransferAuthService,
  fake: FakeTransferServer,
  types: readonly TransferAuthEvent['type'][],
  withinMs = 10_000,
): Promise<{ event: TransferAuthEvent; calls: number }> {
  return firstValueFrom(
    auth.events$.pipe(
      filter((event) => types.includes(event.type)),
      map((event) => ({ event, calls: fake.calls.total })),
      take(1),
      timeout({ first: withinMs }),
    ),
  );
}

/**
 * Applies a fault of the table to every auth request of `fake` (`refused`: stops the fake; `fakeUrl`
 * still gives its old url, which now refuses connections).
 */
export async function injectFault(fake: FakeTransferServer, fault: FaultCase, holdMs?: number): Promise<void> {
  if (fault.fault === 'refused') {
    fakeUrl(fake); // remembered while the fake still has one
    return fake.stop();
  }
  fake.failAlways('any', { ...fault.fault(fake), ...(holdMs === undefined ? {} : { holdMs }) });
}

/** Undoes {@link injectFault}: `clearFaults()`, or restarts a stopped fake on its old port. */
export async function clearFault(fake: FakeTransferServer, fault: FaultCase): Promise<void> {
  fake.clearFaults();
  if (fault.fault === 'refused') await fake.start(Number(new URL(fakeUrl(fake)).port));
}
