import { inspect } from 'node:util';
import { TransferAuthError, TransferAuthErrorCode } from '../../lib/errors/transfer-auth.error';
import { toCachedToken } from '../../lib/token-lifecycle/cached-token';
import { makeTokenResponse } from './support/stub-endpoint';

describe('TransferAuthError', () => {
  const CODES = [
    'INVALID_CONFIG',
    'INVALID_CREDENTIALS',
    'INVALID_RESPONSE',
    'UPSTREAM_UNAVAILABLE',
    'SECRET_UNAVAILABLE',
    'SHUTDOWN',
  ];

  it('TransferAuthErrorCode lists the six codes of the contract and is frozen', () => {
    expect(Object.values(TransferAuthErrorCode).sort()).toEqual([...CODES].sort());
    expect(Object.keys(TransferAuthErrorCode).sort()).toEqual([...CODES].sort());
    expect(Object.isFrozen(TransferAuthErrorCode)).toBe(true);
  });

  it('is an Error with name, code, status and cause', () => {
    const cause = new Error('socket hang up');
    const error = new TransferAuthError('UPSTREAM_UNAVAILABLE', 'Get token failed with HTTP 503.', {
      status: 503,
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(TransferAuthError);
    expect(error.name).toBe('TransferAuthError');
    expect(error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(error.status).toBe(503);
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('Get token failed with HTTP 503.');
    expect(error.stack).toMatch(/^TransferAuthError: Get token failed with HTTP 503\./);
    expect(String(error)).toBe('TransferAuthError: Get token failed with HTTP 503.');
  });

  it('has no status and no cause when none is given', () => {
    const error = new TransferAuthError('SHUTDOWN', 'The token provider is shut down.');
    expect(error.status).toBeUndefined();
    expect(error.cause).toBeUndefined();
    expect('cause' in error).toBe(false);
  });

  it('keeps retryAfterMs out of sight (not enumerable, not in JSON)', () => {
    const error = new TransferAuthError('UPSTREAM_UNAVAILABLE', 'busy', { status: 429, retryAfterMs: 7_000 });
    expect(error.retryAfterMs).toBe(7_000);
    expect(Object.keys(error)).not.toContain('retryAfterMs');
    expect(JSON.stringify(error)).not.toContain('7000');
  });

  describe('util.inspect', () => {
    it('shows the code and the status in the first line, then the stack, then the cause', () => {
      const error = new TransferAuthError('UPSTREAM_UNAVAILABLE', 'Get token failed with HTTP 503.', {
        status: 503,
        cause: new Error('upstream said no'),
      });
      const lines = inspect(error).split('\n');
      expect(lines[0]).toBe('TransferAuthError [UPSTREAM_UNAVAILABLE] (HTTP 503): Get token failed with HTTP 503.');
      expect(lines[1]).toMatch(/^\s+at /);
      expect(lines.at(-1)).toBe('  [cause]: Error: upstream said no');
      expect(lines.slice(1, -1).every((line) => /^\s+at /.test(line) && !line.includes('HTTP'))).toBe(true);
    });

    it('without status or cause, shows the code only', () => {
      const lines = inspect(new TransferAuthError('INVALID_CONFIG', 'Invalid option `agentId`.')).split('\n');
      expect(lines[0]).toBe('TransferAuthError [INVALID_CONFIG]: Invalid option `agentId`.');
      expect(lines.slice(1).every((line) => /^\s+at /.test(line))).toBe(true);
    });

    it('also when nested in another object', () => {
      const error = new TransferAuthError('INVALID_CREDENTIALS', 'rejected', { status: 401 });
      expect(inspect({ error }, { depth: 5 })).toContain(
        'TransferAuthError [INVALID_CREDENTIALS] (HTTP 401): rejected',
      );
    });
  });

  describe('JSON.stringify', () => {
    it('gives name, code, status and message: no stack, no cause', () => {
      const error = new TransferAuthError('INVALID_RESPONSE', 'Get token answered HTTP 400.', {
        status: 400,
        cause: new Error('inner detail'),
      });
      expect(JSON.parse(JSON.stringify(error))).toEqual({
        name: 'TransferAuthError',
        code: 'INVALID_RESPONSE',
        status: 400,
        message: 'Get token answered HTTP 400.',
      });
      expect(JSON.stringify(error)).not.toContain('inner detail');
      expect(JSON.stringify(error)).not.toContain(' at ');
    });

    it('leaves out a missing status', () => {
      expect(JSON.parse(JSON.stringify(new TransferAuthError('SHUTDOWN', 'bye')))).toEqual({
        name: 'TransferAuthError',
        code: 'SHUTDOWN',
        message: 'bye',
      });
    });
  });

  describe('is()', () => {
    const error = new TransferAuthError('INVALID_CREDENTIALS', 'no', { status: 403 });

    it('recognises the class, with or without a code', () => {
      expect(TransferAuthError.is(error)).toBe(true);
      expect(TransferAuthError.is(error, 'INVALID_CREDENTIALS')).toBe(true);
      expect(TransferAuthError.is(error, 'INVALID_CONFIG')).toBe(false);
    });

    it.each([
      ['a plain Error', new Error('INVALID_CREDENTIALS')],
      ['a look-alike object', { name: 'TransferAuthError', code: 'INVALID_CREDENTIALS', message: 'no' }],
      ['an Error with a code', Object.assign(new Error('x'), { code: 'INVALID_CREDENTIALS' })],
      ['null', null],
      ['undefined', undefined],
      ['a string', 'INVALID_CREDENTIALS'],
    ])('rejects %s', (_what, value) => {
      expect(TransferAuthError.is(value)).toBe(false);
      expect(TransferAuthError.is(value, 'INVALID_CREDENTIALS')).toBe(false);
    });

    it('narrows the type', () => {
      const caught: unknown = error;
      if (TransferAuthError.is(caught, 'INVALID_CREDENTIALS')) expect(caught.status).toBe(403);
      else throw new Error('not narrowed');
    });
  });
});

// The DTOs: test/unit/dto.spec.ts.
describe('secrets in cached tokens', () => {
  it('a cached token never shows its access or refresh token when printed', () => {
    const now = { mono: 1_000, wall: Date.parse('2025-01-01T00:00:00Z') };
    const { token, refresh } = toCachedToken(
      makeTokenResponse({
        accessToken: 'at-visible-nowhere',
        refreshToken: 'rt-visible-nowhere',
        serverNowMs: now.wall,
        lifetimeMs: 600_000,
        refreshLifetimeMs: 86_400_000,
        dateHeader: true,
        sentAt: now,
        receivedAt: now,
      }),
      undefined,
    );
    expect(token.accessToken).toBe('at-visible-nowhere');
    expect(refresh?.refreshToken).toBe('rt-visible-nowhere');
    expect(token.accessExpiresAt).toEqual(new Date(now.wall + 600_000));
    const printed = [inspect(token), inspect(refresh), JSON.stringify(token), JSON.stringify(refresh)].join('\n');
    expect(printed).not.toContain('visible-nowhere');
  });
});
