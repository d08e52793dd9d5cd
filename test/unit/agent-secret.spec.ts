import { inspect } from 'node:util';
import { readAgentSecret } from '../../lib/upstream/agent-secret';
import { TransferAuthError } from '../../lib/errors/transfer-auth.error';

const SECRET = 'S3CR3T-r0tat3d-9f8e';
const never = new Promise<never>(() => undefined);
/** A shutdown that never comes. */
const running = new AbortController().signal;

async function failure(read: Promise<string>): Promise<TransferAuthError> {
  const error = await read.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransferAuthError);
  const shown = [inspect(error, { showHidden: true, depth: 10 }), JSON.stringify(error), (error as Error).stack];
  for (const text of shown) expect(text).not.toContain(SECRET);
  return error as TransferAuthError;
}

describe('readAgentSecret', () => {
  it('answers a string given as is, and what a provider answers (sync or async), each call anew', async () => {
    expect(await readAgentSecret(SECRET, 100, running)).toBe(SECRET);
    let n = 0;
    const provider = jest.fn(() => `${SECRET}-${++n}`);
    expect(await readAgentSecret(provider, 100, running)).toBe(`${SECRET}-1`);
    expect(await readAgentSecret(async () => SECRET, 100, running)).toBe(SECRET);
    expect(await readAgentSecret(provider, 100, running)).toBe(`${SECRET}-2`);
    expect(provider).toHaveBeenCalledTimes(2);
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error(`cannot parse ${SECRET}`);
      },
      /provider failed \(Error\)/,
    ],
    [
      'rejects with a code',
      () => Promise.reject(Object.assign(new Error(`open ${SECRET}`), { code: 'ENOENT' })),
      /failed \(Error ENOENT\)/,
    ],
    [
      'throws a string',
      () => {
        throw SECRET;
      },
      /failed \(it threw a string\)/,
    ],
    ['answers a number', () => 42 as unknown as string, /answered number, not a string/],
    ['answers null', () => null as unknown as string, /answered null, not a string/],
    ['answers an empty string', () => '  ', /answered an empty string/],
  ])('a provider that %s: SECRET_UNAVAILABLE naming why, never a value', async (_what, provider, message) => {
    const error = await failure(readAgentSecret(provider, 100, running));
    expect(error.code).toBe('SECRET_UNAVAILABLE');
    expect(error.message).toMatch(message);
    expect(error.cause).toBeUndefined(); // the provider's error may quote the secret
  });

  it('a provider that hangs: SECRET_UNAVAILABLE after the timeout, and no timer holds the process', async () => {
    jest.useFakeTimers();
    try {
      const read = readAgentSecret(() => never, 250, running);
      const settled = jest.fn();
      read.then(settled, settled);
      await jest.advanceTimersByTimeAsync(249);
      expect(settled).not.toHaveBeenCalled();
      await jest.advanceTimersByTimeAsync(1);
      const error = await failure(read);
      expect(error).toMatchObject({ code: 'SECRET_UNAVAILABLE', message: expect.stringMatching(/within 250 ms/) });
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('shutdown settles a hanging provider at once with SHUTDOWN, and no provider is called after it', async () => {
    const shutdown = new AbortController();
    const read = readAgentSecret(() => never, 60_000, shutdown.signal);
    shutdown.abort();
    expect((await failure(read)).code).toBe('SHUTDOWN');
    const provider = jest.fn(() => SECRET);
    expect((await failure(readAgentSecret(provider, 100, shutdown.signal))).code).toBe('SHUTDOWN');
    expect(provider).not.toHaveBeenCalled();
  });

  it('a provider that throws a TransferAuthError SHUTDOWN of its own is a failed provider, not a shutdown', async () => {
    const thrown = new TransferAuthError('SHUTDOWN', `mine ${SECRET}`);
    const error = await failure(readAgentSecret(() => Promise.reject(thrown), 100, running));
    expect(error.code).toBe('SECRET_UNAVAILABLE');
  });
});
