import fc from 'fast-check';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { toCachedToken } from '../../lib/token-lifecycle/cached-token';
import { TransferApiClient } from '../../lib/upstream/transfer-api.client';
import { isoMicro } from './support/stub-endpoint';

/** Fixed, so that a failure reproduces: fast-check prints the counterexample and its path. */
const SEED = 20_251_125;
const RUNS = 2_000;
const MAX_BODY = 64 * 1024;
const HOUR = 3_600_000;

/** What the fake upstream answers next. */
interface Answer {
  status: number;
  body: Buffer;
  date?: string;
}

/**
 * One loopback HTTP server answering whatever the current run asks for: the client under test takes
 * the same path (axios, status, size cap, JSON, DTO validation) as against the real upstream.
 */
class AnswerServer {
  next: Answer = { status: 200, body: Buffer.from('{}') };
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const { status, body, date } = this.next;
        const headers: Record<string, string | number> = { 'Content-Type': 'application/json' };
        if (date !== undefined) headers['Date'] = date;
        res.writeHead(status, headers);
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

type Outcome = { kind: 'token'; accessToken: string } | { kind: 'error'; error: TransferAuthError };

describe('fuzz: what the upstream sends', () => {
  const server = new AnswerServer();
  let client: TransferApiClient;

  beforeAll(async () => {
    await server.start();
    client = new TransferApiClient(
      resolveTransferAuthOptions({
        agentId: 'fuzz-agent',
        agentSecret: 'fuzz-secret-0f0f0f',
        baseUrl: server.url,
        requestTimeoutMs: 5_000,
      }),
    );
  });
  afterAll(async () => {
    client.close();
    await server.stop();
  });

  /** The client's parse path, then the lifecycle's: a cached token, or the error the caller would see. */
  async function exchange(answer: Answer): Promise<Outcome> {
    server.next = answer;
    try {
      const response = await client.getToken();
      const { token } = toCachedToken(response, undefined);
      return { kind: 'token', accessToken: token.accessToken };
    } catch (error) {
      if (!(error instanceof TransferAuthError)) {
        throw new Error(
          `not a TransferAuthError: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
        );
      }
      return { kind: 'error', error };
    }
  }

  /** Only a usable token, or INVALID_RESPONSE; never another code, never a foreign exception. */
  async function tokenOrInvalidResponse(answer: Answer): Promise<Outcome> {
    const outcome = await exchange(answer);
    if (outcome.kind === 'error' && outcome.error.code !== 'INVALID_RESPONSE') {
      throw new Error(`expected INVALID_RESPONSE, got ${outcome.error.code}: ${outcome.error.message}`);
    }
    return outcome;
  }

  const ok = (body: string | Uint8Array, date?: string): Answer => ({ status: 200, body: Buffer.from(body), date });

  it(`(a) arbitrary JSON values as the body: a token or INVALID_RESPONSE (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const outcome = await tokenOrInvalidResponse(ok(JSON.stringify(value)));
        expect(outcome.kind).toBe('error'); // no random JSON is a valid token answer
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it(`(a) arbitrary bytes as the body: a token or INVALID_RESPONSE (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        await tokenOrInvalidResponse(ok(bytes));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  describe('near-valid token answers', () => {
    const DAY = 24 * HOUR;
    const token = fc.stringMatching(/^tok_[0-9a-f]{12,40}$/);
    const future = fc.integer({ min: 60_000, max: 3_650 * DAY }).map((ms) => isoMicro(Date.now() + ms));
    const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
    const calendarish = fc
      .record({
        year: fc.integer({ min: 0, max: 9_999 }),
        month: fc.integer({ min: 0, max: 13 }),
        day: fc.integer({ min: 0, max: 32 }),
        hour: fc.integer({ min: 0, max: 25 }),
        minute: fc.integer({ min: 0, max: 61 }),
        second: fc.integer({ min: 0, max: 61 }),
        fraction: fc.stringMatching(/^(\.[0-9]{0,11})?$/),
        zone: fc.constantFrom('Z', 'z', '+05:00', '-03:30', '+0500', '+24:00', '+05:60', '', ' UTC', 'GMT'),
      })
      .map(
        (t) =>
          `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}${t.fraction}${t.zone}`,
      );
    const timestamp = fc.oneof(
      { weight: 8, arbitrary: future },
      { weight: 2, arbitrary: calendarish },
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.string(),
    );
    /** JSON text of a value, so that deep nesting (which JSON.stringify would not build cheaply) fits. */
    const deep = fc
      .tuple(fc.integer({ min: 1, max: 16_000 }), fc.constantFrom('[', '{"a":'))
      .map(([n, open]) => (open === '[' ? '['.repeat(n) + ']'.repeat(n) : open.repeat(n) + '1' + '}'.repeat(n)));
    const anyJsonText = fc.oneof(
      { weight: 3, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: deep },
    );
    const field = (valid: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> =>
      fc.oneof(
        { weight: 12, arbitrary: valid.map((v) => JSON.stringify(v)) },
        { weight: 1, arbitrary: anyJsonText },
        { weight: 1, arbitrary: fc.constant(undefined) }, // missing
        { weight: 1, arbitrary: fc.string({ minLength: 8_190, maxLength: 8_194 }).map((v) => JSON.stringify(v)) },
      );
    const extraKey = fc.oneof(
      fc.constantFrom(
        '__proto__',
        'constructor',
        'prototype',
        'toString',
        'valueOf',
        'hasOwnProperty',
        'then',
        'access_token',
        'access_expire_at',
      ),
      fc.string(),
    );
    const body = fc
      .record({
        access_token: field(token),
        refresh_token: field(token),
        access_expire_at: field(timestamp),
        refresh_expire_at: field(timestamp),
        extra: fc.array(fc.tuple(extraKey, anyJsonText), { maxLength: 3 }),
        padding: fc.oneof(
          { weight: 9, arbitrary: fc.constant(0) },
          fc.integer({ min: MAX_BODY - 300, max: MAX_BODY + 300 }),
        ),
      })
      .map(({ extra, padding, ...fields }) => {
        const entries = Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined);
        const json = `{${[...entries, ...extra].map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
        return padding > json.length ? json + ' '.repeat(padding - json.length) : json;
      });

    it(`(a) token-shaped bodies with garbage, dangerous keys, deep nesting, odd sizes (seed ${SEED})`, async () => {
      let tokens = 0;
      await fc.assert(
        fc.asyncProperty(body, async (text) => {
          const outcome = await tokenOrInvalidResponse(ok(text));
          if (Buffer.byteLength(text) > MAX_BODY) expect(outcome.kind).toBe('error');
          if (outcome.kind === 'token') {
            tokens++;
            expect(typeof outcome.accessToken).toBe('string');
            expect(outcome.accessToken.length).toBeGreaterThan(0);
            expect(outcome.accessToken.length).toBeLessThanOrEqual(8_192);
          } else {
            // Messages name fields, never values: no token in them.
            const shown = `${outcome.error.message}\n${inspect(outcome.error)}\n${JSON.stringify(outcome.error)}`;
            for (const match of text.match(/tok_[0-9a-f]{12,40}/g) ?? []) expect(shown).not.toContain(match);
          }
        }),
        { seed: SEED, numRuns: RUNS },
      );
      // The generator must reach the valid side too, or the property proves little.
      expect(tokens).toBeGreaterThan(RUNS / 20);
    });

    it('a deeply nested field is INVALID_RESPONSE (not a stack overflow)', async () => {
      for (const open of ['[', '{"a":']) {
        const n = 10_000;
        const nested = open === '[' ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n);
        const text = `{"access_token":${nested},"refresh_token":"r","access_expire_at":"2099-01-01T00:00:00Z","refresh_expire_at":"2099-01-01T00:00:00Z"}`;
        expect(Buffer.byteLength(text)).toBeLessThan(MAX_BODY);
        const outcome = await exchange(ok(text));
        expect(outcome).toMatchObject({ kind: 'error', error: { code: 'INVALID_RESPONSE' } });
      }
    });
  });

  describe('the Date header', () => {
    const validBody = (): string =>
      JSON.stringify({
        access_token: 'tok_dateheader',
        refresh_token: 'tok_refresh',
        access_expire_at: isoMicro(Date.now() + HOUR),
        refresh_expire_at: isoMicro(Date.now() + 24 * HOUR),
      });
    const printable = fc.string({ maxLength: 40 }).filter((s) => /^[\x20-\x7e]*$/.test(s));
    const anyDate = fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true });
    const dateHeader = fc.oneof(
      printable,
      anyDate.map((d) => d.toUTCString()),
      anyDate.map((d) => d.toISOString()),
      fc.integer({ min: -30 * 86_400, max: 30 * 86_400 }).map((s) => new Date(Date.now() + s * 1000).toUTCString()),
      fc.constantFrom('+275760-09-13T00:00:00.000Z', '-271821-04-20T00:00:00.000Z', 'Tuesday', ''),
    );

    it(`(a) any Date header with a valid body: a token or INVALID_RESPONSE (seed ${SEED})`, async () => {
      await fc.assert(
        fc.asyncProperty(dateHeader, async (date) => {
          await tokenOrInvalidResponse(ok(validBody(), date));
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });

    it.each(['0', '12', '2000', '1.5'])(
      'a Date header that is not an HTTP-date (%j) is ignored, not read as a far-off clock',
      async (date) => {
        server.next = ok(validBody(), date);
        const response = await client.getToken();
        const { token } = toCachedToken(response, undefined);
        // The token expires in an hour: it must not look usable for years.
        expect(token.usableUntil.wall).toBeLessThanOrEqual(Date.now() + HOUR);
      },
    );
  });

  it(`(a) any status with any body: the code follows the status class (seed ${SEED})`, async () => {
    const status = fc.integer({ min: 200, max: 599 });
    const bodyText = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(status, bodyText, async (code, text) => {
        const outcome = await exchange({ status: code, body: Buffer.from(text) });
        let expected: TransferAuthError['code'];
        if (code === 401 || code === 403) expected = 'INVALID_CREDENTIALS';
        else if (code === 408 || code === 429 || code >= 500) expected = 'UPSTREAM_UNAVAILABLE';
        else expected = 'INVALID_RESPONSE';
        expect(outcome.kind).toBe('error');
        if (outcome.kind === 'error') {
          expect(outcome.error.code).toBe(expected);
          expect(outcome.error.status).toBe(code);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});

describe('fuzz: module options', () => {
  const OPTION =
    /option `(options|agentId|agentSecret|baseUrl|authPath|refresh(\.path|\.method|\.tokenIn)?|refreshMarginMs|requestTimeoutMs|retry(\.maxAttempts|\.baseDelayMs|\.maxDelayMs)?|fetchOnStartup)`/;
  /** Distinctive, and able to pose as a URL scheme or a host label. */
  const secret = fc.stringMatching(/^zq[a-z0-9]{10,24}$/);

  const maybe = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
    fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: arbitrary });
  const positive = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 1e9 }) },
    fc.double({ min: Number.MIN_VALUE, max: 1e12, noNaN: true }),
    fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY, -0, 2.5),
    fc.anything(),
  );
  const path = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('/v5/partner/transfer/agent/auth', '/refresh', '/a/b/c') },
    fc.string().map((s) => `/${s}`),
    fc.string(),
    fc.anything(),
  );

  function options(s: string): fc.Arbitrary<Record<string, unknown>> {
    const baseUrl = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constantFrom(
          'https://api.freedompay.kz',
          'http://localhost:3000',
          'http://127.0.0.1:1/',
          'http://[::1]:8080',
        ),
      },
      fc.webUrl(),
      fc.string(),
      fc.anything(),
      // The secret pasted where it does not belong: each of these must be refused without echoing it.
      fc.constantFrom(
        `${s}:x`,
        `${s}://host`,
        `https://user:${s}@api.freedompay.kz`,
        `https://${s}@host`,
        `http://${s}.example.com`,
      ),
    );
    return fc
      .record({
        agentId: fc.oneof({ weight: 5, arbitrary: fc.constant('agent-1') }, fc.string(), fc.anything()),
        agentSecret: fc.oneof({ weight: 5, arbitrary: fc.constant(s) }, fc.constant(''), fc.anything()),
        baseUrl: maybe(baseUrl),
        authPath: maybe(path),
        refresh: maybe(
          fc.oneof(
            { weight: 2, arbitrary: fc.constant(false) },
            {
              weight: 6,
              arbitrary: fc.record({
                path: maybe(path),
                method: maybe(fc.oneof(fc.constantFrom('PATCH', 'post', 'Put', 'GET'), fc.anything())),
                tokenIn: maybe(fc.oneof(fc.constantFrom('header', 'body', 'both', 'BOTH', 'query'), fc.anything())),
              }),
            },
            fc.anything(),
          ),
        ),
        refreshMarginMs: maybe(positive),
        requestTimeoutMs: maybe(positive),
        retry: maybe(
          fc.oneof(
            {
              weight: 8,
              arbitrary: fc.record({
                maxAttempts: maybe(positive),
                baseDelayMs: maybe(positive),
                maxDelayMs: maybe(positive),
              }),
            },
            fc.anything(),
          ),
        ),
        fetchOnStartup: maybe(fc.oneof({ weight: 8, arbitrary: fc.boolean() }, fc.anything())),
      })
      .map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
  }

  it(`(b) arbitrary options: resolved, or INVALID_CONFIG naming an option, never showing the secret (seed ${SEED})`, () => {
    let resolvedCount = 0;
    fc.assert(
      fc.property(
        secret.chain((s) => fc.tuple(fc.constant(s), options(s))),
        ([s, raw]) => {
          let resolved;
          try {
            resolved = resolveTransferAuthOptions(raw);
          } catch (error) {
            expect(error).toBeInstanceOf(TransferAuthError);
            const e = error as TransferAuthError;
            expect(e.code).toBe('INVALID_CONFIG');
            expect(e.message).toMatch(OPTION);
            for (const shown of [e.message, e.stack ?? '', inspect(e), JSON.stringify(e)]) {
              expect(shown).not.toContain(s);
            }
            return;
          }
          resolvedCount++;
          expect(resolved.agentSecret).toBe(raw['agentSecret']);
          // Where the secret was only given as the secret, printing the options never shows it.
          if (typeof raw['baseUrl'] !== 'string' || !raw['baseUrl'].includes(s)) {
            expect(inspect(resolved, { depth: 10, showHidden: true })).not.toContain(s);
            expect(JSON.stringify(resolved)).not.toContain(s);
          }
          expect(resolved.baseUrl).toMatch(/^https?:\/\//);
          if (resolved.baseUrl.startsWith('http:')) {
            expect(new URL(resolved.baseUrl).hostname).toMatch(/^(localhost|127(\.\d+){3}|\[::1\])$/);
          }
          expect(resolved.retry.maxDelayMs).toBeGreaterThanOrEqual(resolved.retry.baseDelayMs);
          expect(Number.isInteger(resolved.retry.maxAttempts)).toBe(true);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    expect(resolvedCount).toBeGreaterThan(RUNS / 20);
  });
});
