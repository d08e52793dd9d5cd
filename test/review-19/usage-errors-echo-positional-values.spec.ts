import { run } from './run-bin';

/**
 * lib/cli/args.ts rethrows Node's parseArgs message claiming it "names the flag, never the value of a secret".
 * For a positional argument it quotes the value: `doctor --yes "$FREEDOMPAY_AGENT_SECRET"` (or a secret pasted
 * after a boolean flag, or `doctor --json <secret>`) prints the secret on stderr, which CI logs keep. The
 * unknown-command branch quotes up to 40 characters of its argument too.
 */
const SECRET = 'pastedAgentSecret0123456789abcdef';

describe('review 19: usage errors quote the values they refuse', () => {
  it.each([
    ['doctor --yes <secret>', ['doctor', '--yes', SECRET]],
    ['doctor --json <secret>', ['doctor', '--json', SECRET]],
    ['fake <secret>', ['fake', SECRET]],
    ['<secret> doctor', [SECRET, 'doctor']],
  ])('%s: exit 64 without the value on stdout or stderr', async (_label, args) => {
    const result = await run(args, { FREEDOMPAY_AGENT_ID: 'agent-1', FREEDOMPAY_AGENT_SECRET: SECRET });
    expect(result.code).toBe(64);
    expect(result.stdout + result.stderr).not.toContain(SECRET.slice(0, 16));
  });
});
