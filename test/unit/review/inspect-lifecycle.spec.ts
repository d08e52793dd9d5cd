import { inspect } from 'node:util';
import { drive, flush, harness, type Harness } from '../support/stub-endpoint';
import { useFakeClock } from '../lifecycle/support';

describe('regression (0.2 review): UnauthorizedSpacing keeps the raw access token in a plain field', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('util.inspect of the lifecycle after a 401-driven renewal shows no token', async () => {
    h = harness();
    await drive(h.lifecycle.start());
    h.lifecycle.invalidate(await h.lifecycle.getAccessToken());
    await flush();
    await h.lifecycle.getAccessToken();
    const text = inspect(h.lifecycle); // default depth 2: spacing.driven is at depth 1
    for (const secret of h.stub.secrets()) expect(text).not.toContain(secret);
  });
});
