import { inspect } from 'node:util';
import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';

const SECRET = 'Sup3r-S3cret-agent-key';
const base = { agentId: 'agent-7', agentSecret: SECRET };

/** Resolves `options` and returns the INVALID_CONFIG it must throw. */
function configError(options: unknown): TransferAuthError {
  try {
    resolveTransferAuthOptions(options);
  } catch (error) {
    expect(error).toBeInstanceOf(TransferAuthError);
    expect(TransferAuthError.is(error, 'INVALID_CONFIG')).toBe(true);
    return error as TransferAuthError;
  }
  throw new Error(`resolved without an error: ${inspect(options)}`);
}

describe('resolveTransferAuthOptions', () => {
  describe('defaults', () => {
    it('fills in every default of the contract', () => {
      const o = resolveTransferAuthOptions(base);
      expect({ ...o, agentSecret: o.agentSecret }).toEqual({
        agentId: 'agent-7',
        agentSecret: SECRET,
        baseUrl: 'https://api.freedompay.kz',
        authPath: '/v5/partner/transfer/agent/auth',
        refresh: { path: '/v5/partner/transfer/agent/auth', method: 'PATCH', tokenIn: 'both' },
        refreshMarginMs: undefined,
        requestTimeoutMs: 10_000,
        retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5_000 },
        fetchOnStartup: true,
        telemetry: { agentIdAttribute: false },
      });
    });

    it('the refresh path follows a custom authPath', () => {
      const o = resolveTransferAuthOptions({ ...base, authPath: '/v6/auth' });
      expect(o.authPath).toBe('/v6/auth');
      expect(o.refresh).toEqual({ path: '/v6/auth', method: 'PATCH', tokenIn: 'both' });
    });

    it('keeps what is given', () => {
      const o = resolveTransferAuthOptions({
        ...base,
        baseUrl: 'https://sandbox.example.com/partner/',
        refreshMarginMs: 30_000,
        requestTimeoutMs: 2_500,
        fetchOnStartup: false,
        refresh: { path: '/v5/partner/transfer/agent/refresh', method: 'POST', tokenIn: 'body' },
      });
      expect(o).toMatchObject({
        baseUrl: 'https://sandbox.example.com/partner',
        refreshMarginMs: 30_000,
        requestTimeoutMs: 2_500,
        fetchOnStartup: false,
        refresh: { path: '/v5/partner/transfer/agent/refresh', method: 'POST', tokenIn: 'body' },
      });
    });

    it('refresh: false disables the refresh endpoint', () => {
      expect(resolveTransferAuthOptions({ ...base, refresh: false }).refresh).toBe(false);
    });
  });

  describe('partial objects are merged with the defaults', () => {
    it.each([
      [{ maxAttempts: 5 }, { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 }],
      [{ baseDelayMs: 50 }, { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 5_000 }],
      [{ maxDelayMs: 60_000 }, { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 60_000 }],
      [{}, { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5_000 }],
      // Finding 8: each field alone; the maximum is a cap and is never raised.
      [{ baseDelayMs: 10_000 }, { maxAttempts: 3, baseDelayMs: 5_000, maxDelayMs: 5_000 }],
      [{ maxDelayMs: 100 }, { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 100 }],
      [
        { baseDelayMs: 1_000, maxDelayMs: 999 },
        { maxAttempts: 3, baseDelayMs: 999, maxDelayMs: 999 },
      ],
    ])('retry %j', (retry, expected) => {
      expect(resolveTransferAuthOptions({ ...base, retry }).retry).toEqual(expected);
    });

    it.each([
      [{ tokenIn: 'header' }, { path: '/v5/partner/transfer/agent/auth', method: 'PATCH', tokenIn: 'header' }],
      [{ method: 'post' }, { path: '/v5/partner/transfer/agent/auth', method: 'POST', tokenIn: 'both' }],
      [{ path: '/refresh' }, { path: '/refresh', method: 'PATCH', tokenIn: 'both' }],
      [{}, { path: '/v5/partner/transfer/agent/auth', method: 'PATCH', tokenIn: 'both' }],
    ])('refresh %j', (refresh, expected) => {
      expect(resolveTransferAuthOptions({ ...base, refresh }).refresh).toEqual(expected);
    });
  });

  describe('baseUrl', () => {
    it.each([
      ['https://api.freedompay.kz', 'https://api.freedompay.kz'],
      ['https://api.freedompay.kz/', 'https://api.freedompay.kz'],
      ['https://API.FreedomPay.kz:8443/prefix//', 'https://api.freedompay.kz:8443/prefix'],
      ['http://localhost:3000', 'http://localhost:3000'],
      ['http://127.0.0.1:8080/', 'http://127.0.0.1:8080'],
      ['http://127.4.5.6', 'http://127.4.5.6'],
      ['http://[::1]:9000', 'http://[::1]:9000'],
      ['http://LOCALHOST', 'http://localhost'],
    ])('accepts %s', (url, expected) => {
      expect(resolveTransferAuthOptions({ ...base, baseUrl: url }).baseUrl).toBe(expected);
    });

    it.each([
      ['plain http to a public host', 'http://api.freedompay.kz'],
      ['plain http to a private address', 'http://10.0.0.7:8080'],
      ['plain http to a look-alike of localhost', 'http://localhost.attacker.example'],
      ['plain http to a look-alike of 127.0.0.1', 'http://127.0.0.1.nip.io'],
      ['another scheme', 'ftp://files.example.com'],
      ['a scheme that is not a network one', 'file:///etc/passwd'],
      ['a relative URL', '/v5/partner'],
      ['not a URL', 'not a url'],
      ['an empty string', ''],
      ['blank', '   '],
      ['a query', 'https://api.freedompay.kz/?x=1'],
      ['a fragment', 'https://api.freedompay.kz/#frag'],
      ['a number', 443],
    ])('rejects %s', (_what, baseUrl) => {
      const error = configError({ ...base, baseUrl });
      expect(error.message).toMatch(/`baseUrl`/);
    });

    it.each([
      ['user and password', 'https://user:pa55word-xyz@api.freedompay.kz', 'pa55word-xyz'],
      ['user only', 'https://token-abc123@api.freedompay.kz', 'token-abc123'],
      ['the secret as the password', `https://agent-7:${SECRET}@api.freedompay.kz`, SECRET],
    ])('rejects credentials in the URL (%s) without echoing them', (_what, baseUrl, credential) => {
      const error = configError({ ...base, baseUrl });
      expect(error.message).toMatch(/`baseUrl`.*credentials/);
      expect(error.message).not.toContain(credential);
      expect(inspect(error)).not.toContain(credential);
      expect(JSON.stringify(error)).not.toContain(credential);
    });

    it('does not echo any part of a bad URL, not even its scheme', () => {
      // E.g. the secret pasted into the wrong variable: `abc:def` parses as scheme "abc:".
      const pasted = 'k3y9q:7f6e5d4c3b2a';
      const error = configError({ ...base, baseUrl: pasted });
      expect(error.message).toMatch(/`baseUrl`/);
      expect(error.message).not.toContain('k3y9q');
    });
  });

  describe('every bad option is INVALID_CONFIG naming it, never echoing its value', () => {
    const BAD = 'B4D-V4LUE-Zq';
    it.each([
      ['options', null],
      ['options', 'agentId=x'],
      ['options', [base]],
      ['options', undefined],
      ['agentId', { agentSecret: SECRET }],
      ['agentId', { ...base, agentId: '' }],
      ['agentId', { ...base, agentId: '   ' }],
      ['agentId', { ...base, agentId: 42 }],
      ['agentSecret', { agentId: 'a' }],
      ['agentSecret', { ...base, agentSecret: '' }],
      ['agentSecret', { ...base, agentSecret: ' \t ' }],
      ['agentSecret', { ...base, agentSecret: 123_456_789 }],
      ['agentSecret', { ...base, agentSecret: { value: BAD } }],
      ['baseUrl', { ...base, baseUrl: `${BAD}` }],
      ['baseUrl', { ...base, baseUrl: `http://${BAD}.example.com` }],
      ['authPath', { ...base, authPath: BAD }],
      ['authPath', { ...base, authPath: `/${BAD}?q=1` }],
      ['authPath', { ...base, authPath: `//${BAD}.example.com/x` }],
      ['authPath', { ...base, authPath: `/a ${BAD}` }],
      ['authPath', { ...base, authPath: 7 }],
      ['refresh', { ...base, refresh: BAD }],
      ['refresh', { ...base, refresh: true }],
      ['refresh', { ...base, refresh: [BAD] }],
      ['refresh.path', { ...base, refresh: { path: BAD } }],
      ['refresh.method', { ...base, refresh: { method: BAD } }],
      ['refresh.method', { ...base, refresh: { method: 'GET' } }],
      ['refresh.tokenIn', { ...base, refresh: { tokenIn: BAD } }],
      ['refresh.tokenIn', { ...base, refresh: { tokenIn: 'query' } }],
      ['refreshMarginMs', { ...base, refreshMarginMs: 0 }],
      ['refreshMarginMs', { ...base, refreshMarginMs: -1 }],
      ['refreshMarginMs', { ...base, refreshMarginMs: Number.NaN }],
      ['refreshMarginMs', { ...base, refreshMarginMs: Number.POSITIVE_INFINITY }],
      ['refreshMarginMs', { ...base, refreshMarginMs: BAD }],
      ['requestTimeoutMs', { ...base, requestTimeoutMs: 0 }],
      ['requestTimeoutMs', { ...base, requestTimeoutMs: -5_000 }],
      ['requestTimeoutMs', { ...base, requestTimeoutMs: '10000' }],
      ['retry', { ...base, retry: BAD }],
      ['retry', { ...base, retry: [1] }],
      ['retry.maxAttempts', { ...base, retry: { maxAttempts: 0 } }],
      ['retry.maxAttempts', { ...base, retry: { maxAttempts: 2.5 } }],
      ['retry.maxAttempts', { ...base, retry: { maxAttempts: BAD } }],
      ['retry.baseDelayMs', { ...base, retry: { baseDelayMs: -1 } }],
      ['retry.baseDelayMs', { ...base, retry: { baseDelayMs: Number.NaN } }],
      ['retry.maxDelayMs', { ...base, retry: { maxDelayMs: 0 } }],
      ['retry.maxDelayMs', { ...base, retry: { maxDelayMs: 2 ** 31 } }],
      ['fetchOnStartup', { ...base, fetchOnStartup: 'yes' }],
      ['fetchOnStartup', { ...base, fetchOnStartup: 1 }],
      ['telemetry', { ...base, telemetry: BAD }],
      ['telemetry', { ...base, telemetry: true }],
      ['telemetry.agentIdAttribute', { ...base, telemetry: { agentIdAttribute: BAD } }],
      // A provider's secret may rotate: a key derived from it would change, so the store brings its own.
      ['store', { ...base, agentSecret: () => SECRET, store: { read() {}, write() {}, lock() {} } }],
      [
        'store',
        { ...base, agentSecret: () => SECRET, store: { read() {}, write() {}, lock() {}, ownEncryptionKey: 'yes' } },
      ],
    ])('`%s` (case %#)', (option, options) => {
      const error = configError(options);
      expect(error.message).toContain(`\`${option}\``);
      expect(error.message).not.toContain(BAD);
      expect(error.message).not.toContain(SECRET);
      expect(error.status).toBeUndefined();
      expect(error.cause).toBeUndefined();
      for (const shown of [inspect(error, { showHidden: true, depth: 10 }), JSON.stringify(error), error.stack ?? '']) {
        expect(shown).not.toContain(BAD);
        expect(shown).not.toContain(SECRET);
      }
    });

    it('takes a function as agentSecret (a provider), never calling it while resolving', () => {
      const provider = jest.fn(() => SECRET);
      const o = resolveTransferAuthOptions({ ...base, agentSecret: provider });
      expect(o.agentSecret).toBe(provider);
      expect(provider).not.toHaveBeenCalled();
      expect(inspect(o)).toContain("agentSecret: '[redacted]'");
      const store = { read: jest.fn(), write: jest.fn(), lock: jest.fn(), ownEncryptionKey: true };
      expect(resolveTransferAuthOptions({ ...base, agentSecret: provider, store }).store).toBe(store);
    });

    it('telemetry: false, or the agent id as an attribute only when asked', () => {
      expect(resolveTransferAuthOptions({ ...base, telemetry: false }).telemetry).toBe(false);
      expect(resolveTransferAuthOptions({ ...base, telemetry: {} }).telemetry).toEqual({ agentIdAttribute: false });
      expect(resolveTransferAuthOptions({ ...base, telemetry: { agentIdAttribute: true } }).telemetry).toEqual({
        agentIdAttribute: true,
      });
    });

    it('names the first bad option when several are bad', () => {
      expect(configError({ agentSecret: '', baseUrl: 'ftp://x' }).message).toContain('`agentId`');
    });
  });

  describe('the secret in the resolved options', () => {
    const resolved = resolveTransferAuthOptions(base);

    it('is readable by the package', () => {
      expect(resolved.agentSecret).toBe(SECRET);
    });

    it('is [redacted] in util.inspect, at any depth and with hidden fields', () => {
      expect(inspect(resolved)).toContain("agentSecret: '[redacted]'");
      for (const shown of [
        inspect(resolved),
        inspect({ deep: { deeper: [resolved] } }, { depth: 10 }),
        inspect(resolved, { showHidden: true, depth: Infinity }),
        inspect(resolved, { customInspect: true, colors: true }),
      ]) {
        expect(shown).not.toContain(SECRET);
      }
    });

    it('is [redacted] in JSON.stringify', () => {
      expect(JSON.parse(JSON.stringify(resolved))).toMatchObject({ agentId: 'agent-7', agentSecret: '[redacted]' });
      expect(JSON.stringify({ options: resolved })).not.toContain(SECRET);
    });

    it('is not enumerable, so spreads and Object.entries leave it behind', () => {
      expect(Object.keys(resolved)).not.toContain('agentSecret');
      expect(JSON.stringify(Object.entries(resolved))).not.toContain(SECRET);
      expect({ ...resolved }).not.toHaveProperty('agentSecret');
    });

    it('cannot be changed: the resolved options are frozen', () => {
      expect(Object.isFrozen(resolved)).toBe(true);
      expect(Object.isFrozen(resolved.retry)).toBe(true);
    });
  });
});
