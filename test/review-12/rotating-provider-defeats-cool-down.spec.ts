import { clientRig, coolDownLogins, fakeClockPerTest, refused, type ClientRig } from './support';

/**
 * Finding: the rotated-secret check remembers only the LAST secret Get token rejected. A provider that
 * answers two secrets in turn (a secret manager whose replicas disagree, a file swapped back and forth
 * by a half-done rollout, AWSCURRENT/AWSPREVIOUS read through a round-robin), both of them refused by
 * the upstream, always answers a "changed" secret: each rejected login is followed by a second one at
 * once (getToken's re-read), and each refused caller's check (once a second) resets the cool-down
 * (FailurePolicy.credentialsChanged) and starts another pair. A busy app then sends about two rejected
 * logins a second for as long as the secrets stay wrong, where the contract ("Protecting the upstream
 * (and the agent's account)") caps rejected logins by a cool-down that doubles from 1 s to 5 minutes:
 * the agent's account risks a lockout. A secret already rejected during this cool-down is not "changed".
 *
 * Control: a provider that answers the same wrong secret follows the cool-down.
 */

const WINDOW_MS = 60_000;
const CALLER_EVERY_MS = 100;

describe('review 12: a provider that alternates between two rejected secrets', () => {
  const closeAfterTest = fakeClockPerTest();

  /** A caller every 100 ms for a minute of fake time; every one of them is refused. */
  async function busyMinute(r: ClientRig): Promise<Set<string>> {
    const codes = new Set<string>();
    for (let t = 0; t < WINDOW_MS; t += CALLER_EVERY_MS) {
      r.lifecycle.getAccessToken().then(
        () => codes.add('token'),
        (error: { code?: string }) => codes.add(String(error.code)),
      );
      await jest.advanceTimersByTimeAsync(CALLER_EVERY_MS);
    }
    return codes;
  }

  it.each<[string, () => () => string, number]>([
    // The cool-down alone: 1 + 1 + 2 + 4 + 8 + 16 + 32 s ... six logins in a minute.
    ['the same wrong secret every time (control)', () => () => 'wrong-secret-A', coolDownLogins(WINDOW_MS)],
    // Each secret may be tried once at once when it first shows up: twice the cool-down's logins at most.
    [
      'two wrong secrets in turn',
      () => {
        let reads = 0;
        return () => (reads++ % 2 === 0 ? 'wrong-secret-A' : 'wrong-secret-B');
      },
      2 * coolDownLogins(WINDOW_MS),
    ],
  ])('%s: rejected logins stay under the credentials cool-down', async (_name, makeProvider, maxLogins) => {
    const rig = clientRig({ agentSecret: makeProvider() }, refused);
    closeAfterTest(rig.lifecycle);
    const codes = await busyMinute(rig);
    expect(codes).toEqual(new Set(['INVALID_CREDENTIALS']));
    // Now: the control sends 6; the alternating provider about 120 (two a second).
    expect(rig.logins.length).toBeLessThanOrEqual(maxLogins);
  });
});
