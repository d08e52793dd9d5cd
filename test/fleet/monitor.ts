import type { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

/** The default key prefix of RedisTokenStore, followed by the hash tag that opens every key name. */
export const KEY_PREFIX = 'freedompay-transfer-auth:{';

/** The agent secret in the forms a leak could take: as is, base64, base64url, hex. */
function secretForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [secret, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
}

/**
 * Checks MONITOR captures (one per Redis node) of a fleet run: no access or refresh token the fake issued,
 * not the agent secret in any of its forms; and, so that the check is not vacuous, the store's own commands
 * are there (EVAL on its key names, the HSET of the entry its script ran). Returns the EVAL count per node.
 */
export function expectCaptureClean(captures: string[], fake: FakeTransferServer): number[] {
  const all = captures.join('\n');
  const tokens = fake.issuedTokens();
  expect(tokens.length).toBeGreaterThan(2);
  const leaked = [...tokens, ...secretForms(fake.agentSecret)].filter((needle) => all.includes(needle));
  expect(leaked).toEqual([]);
  // The store was at work while the capture ran: its scripts on its keys, and the entry they wrote.
  const evals = captures.map((text) => text.split('\n').filter((line) => /"eval"/i.test(line)).length);
  expect(evals.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  expect(all).toContain(`"${KEY_PREFIX}`);
  expect(all).toMatch(/lua\] "HSET" "freedompay-transfer-auth:\{[0-9a-f]+\}:token"/i);
  return evals;
}
