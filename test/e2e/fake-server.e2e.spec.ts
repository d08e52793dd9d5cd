import { spawn } from 'node:child_process';
import http, { request, type Server } from 'node:http';
import { join } from 'node:path';
import { DEFAULT_AUTH_PATH } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer, type FakeTransferServerOptions } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { builtPackage } from '../support/built-package';

/**
 * The HTTP servers FakeTransferServer (lib/testing/) creates from now on, until `restore()`. Whether they
 * listen is read on them: counting the process' TCPServerWrap handles would count every server of the Jest
 * worker too (one a previous test file left closing would move the count).
 */
function trackFakeServers(): {
  created: () => number;
  listening: () => number;
  open: () => number;
  restore: () => void;
} {
  const servers: { server: Server; closed: boolean }[] = [];
  const real = http.createServer;
  http.createServer = ((...args: unknown[]) => {
    const server = (real as (...a: unknown[]) => Server)(...args);
    if (/[\\/]lib[\\/]testing[\\/]/.test(new Error().stack ?? '')) {
      const entry = { server, closed: false };
      server.once('close', () => (entry.closed = true));
      servers.push(entry);
    }
    return server;
  }) as typeof http.createServer;
  return {
    created: () => servers.length,
    listening: () => servers.filter(({ server }) => server.listening).length,
    /** Not closed yet: `close()` calls back once the listening handle and every connection are gone. */
    open: () => servers.filter(({ closed }) => !closed).length,
    restore: () => {
      http.createServer = real;
    },
  };
}

/** One raw request to the fake, on a real socket. */
function send(
  url: string,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers: { 'Content-Type': 'application/json', ...headers } });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Pair {
  access_token: string;
  refresh_token: string;
  access_expire_at: string;
  refresh_expire_at: string;
}

/** Get token on a raw socket: the pair the fake answered. */
async function login(fake: FakeTransferServer): Promise<Pair> {
  const body = JSON.stringify({ agent_id: fake.agentId, agent_secret: fake.agentSecret });
  const answer = await send(fake.url, 'POST', DEFAULT_AUTH_PATH, body);
  expect(answer.status).toBe(200);
  return answer.json as Pair;
}

/** Refresh token on a raw socket, with the fake's default route (`PATCH` on the auth path, token in both). */
function refreshWith(fake: FakeTransferServer, token: string): Promise<{ status: number; json: unknown }> {
  return send(fake.url, 'PATCH', DEFAULT_AUTH_PATH, JSON.stringify({ refresh_token: token }), {
    Authorization: `Bearer ${token}`,
  });
}

describe('FakeTransferServer (finding 9)', () => {
  const fakes: FakeTransferServer[] = [];
  let app: AuthApp | undefined;

  function track(options: FakeTransferServerOptions = {}): FakeTransferServer {
    const fake = new FakeTransferServer(options);
    fakes.push(fake);
    return fake;
  }

  afterEach(async () => {
    await app?.close();
    app = undefined;
    for (const fake of fakes.splice(0)) await fake.stop();
  });

  describe('start() and stop()', () => {
    let servers: ReturnType<typeof trackFakeServers> | undefined;
    afterEach(() => {
      servers?.restore();
      servers = undefined;
    });

    it('concurrent start() calls share one server, and stop() leaves nothing listening', async () => {
      servers = trackFakeServers();
      const fake = track();
      const [a, b, c] = await Promise.all([fake.start(), fake.start(), fake.start(0)]);
      expect(a).toBe(fake);
      expect(b).toBe(fake);
      expect(c).toBe(fake);
      expect({ created: servers.created(), listening: servers.listening() }).toEqual({ created: 1, listening: 1 }); // 0.2.0: three, two of them leaked
      expect((await send(fake.url, 'GET', '/nowhere')).status).toBe(404);
      await fake.stop();
      expect({ listening: servers.listening(), open: servers.open() }).toEqual({ listening: 0, open: 0 });
    });

    it('a stop() during start() finishes the start, then stops: nothing keeps listening', async () => {
      servers = trackFakeServers();
      const fake = track();
      const started = fake.start();
      await Promise.all([fake.stop(), fake.stop()]);
      await started;
      expect(servers.created()).toBe(1);
      expect({ listening: servers.listening(), open: servers.open() }).toEqual({ listening: 0, open: 0 });
      expect(() => fake.url).toThrow(/stopped/);
    });

    it('a process that starts the fake twice at once and stops it exits by itself', async () => {
      const testing = join(builtPackage(), 'testing', 'index.js');
      const script = `
        const { FakeTransferServer } = require(${JSON.stringify(testing)});
        (async () => {
          const fake = new FakeTransferServer();
          await Promise.all([fake.start(), fake.start()]);
          await fake.stop();
          console.log('done');
        })();`;
      const { code, out, killed } = await new Promise<{ code: number | null; out: string; killed: boolean }>(
        (resolve, reject) => {
          const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
          let text = '';
          let killedByUs = false;
          const kill = setTimeout(() => {
            killedByUs = true;
            child.kill('SIGKILL');
          }, 10_000);
          child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
          child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
          child.on('error', reject);
          child.on('exit', (exitCode) => {
            clearTimeout(kill);
            resolve({ code: exitCode, out: text, killed: killedByUs });
          });
        },
      );
      expect(out).toContain('done');
      expect(killed).toBe(false); // 0.2.0: a leaked server kept the process alive until killed
      expect(code).toBe(0);
    }, 60_000);

    it('url throws before start() and after stop(); a restart gets a url again', async () => {
      const fake = track();
      expect(() => fake.url).toThrow(/not started/);
      await fake.start();
      const port = Number(new URL(fake.url).port);
      await fake.stop();
      expect(() => fake.url).toThrow(/FakeTransferServer is stopped/);
      await fake.start(port);
      expect(fake.url).toBe(`http://127.0.0.1:${port}`);
      expect((await send(fake.url, 'GET', '/nowhere')).status).toBe(404);
    });

    it('waitForCalls() pending at stop() rejects; called after stop() it rejects at once', async () => {
      const fake = await track().start();
      const waiting = fake.waitForCalls(3, 'auth');
      await send(fake.url, 'GET', '/nowhere');
      await fake.stop();
      await expect(waiting).rejects.toThrow(/stopped before calls\.auth reached 3/);
      await expect(fake.waitForCalls(2)).rejects.toThrow(/stopped/);
      await expect(fake.waitForCalls(1, 'unknown')).resolves.toBeUndefined(); // already reached
    });

    it('waitForCalls() may be called before start() and resolves once the calls arrive', async () => {
      const fake = track();
      const waiting = fake.waitForCalls(1, 'agents');
      await fake.start();
      await send(fake.url, 'GET', '/v5/partner/transfer/agents');
      await expect(waiting).resolves.toBeUndefined();
    });
  });

  describe('the refresh option mirrors the module', () => {
    it.each(['both', 'header', 'body'] as const)(
      'refresh as POST on the auth path (tokenIn %s): the module refreshes against the fake',
      async (tokenIn) => {
        const refresh = { method: 'POST', tokenIn } as const;
        const fake = await track({ refresh }).start();
        app = await createAuthApp(fakeOptions(fake, { refresh }));
        const first = await app.auth.getAccessToken();
        const second = await app.auth.forceRefresh();
        expect(second).not.toBe(first);
        // 0.2.0 answered the refresh as a Get token (400: not agent_id and agent_secret), then logged in again.
        expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, unknown: 0 });
        const record = fake.requests[1];
        expect(record).toMatchObject({ endpoint: 'refresh', method: 'POST', path: DEFAULT_AUTH_PATH, status: 200 });
        expect(fake.isAccessTokenValid(second)).toBe(true);
        expect(app.events.filter((e) => e.type === 'token.refreshed')).toHaveLength(1);
      },
    );

    it('POST on the auth path: Get token without a refresh token, refresh with one, on raw sockets', async () => {
      const fake = await track({ refresh: { method: 'post', tokenIn: 'body' } }).start();
      const login = await send(
        fake.url,
        'POST',
        DEFAULT_AUTH_PATH,
        JSON.stringify({ agent_id: fake.agentId, agent_secret: fake.agentSecret }),
      );
      expect(login.status).toBe(200);
      const { refresh_token } = login.json as { refresh_token: string };
      const renewed = await send(fake.url, 'POST', DEFAULT_AUTH_PATH, JSON.stringify({ refresh_token }));
      expect(renewed.status).toBe(200);
      expect(fake.calls).toMatchObject({ auth: 1, refresh: 1 });
      // Used once: the fake rotates refresh tokens.
      expect((await send(fake.url, 'POST', DEFAULT_AUTH_PATH, JSON.stringify({ refresh_token }))).status).toBe(401);
    });

    it('a refresh on its own path keeps Get token where it was', async () => {
      const refresh = { path: '/v5/partner/transfer/agent/refresh', method: 'POST', tokenIn: 'header' } as const;
      const fake = await track({ refresh }).start();
      app = await createAuthApp(fakeOptions(fake, { refresh }));
      await app.auth.forceRefresh();
      expect(fake.requests.map((r) => [r.endpoint, r.method, r.path, r.status])).toEqual([
        ['auth', 'POST', DEFAULT_AUTH_PATH, 200],
        ['refresh', 'POST', refresh.path, 200],
      ]);
    });

    it('refresh: false serves no refresh endpoint, as the module then calls none', async () => {
      const fake = await track({ refresh: false }).start();
      const answer = await send(fake.url, 'PATCH', DEFAULT_AUTH_PATH, JSON.stringify({ refresh_token: 'x' }), {
        Authorization: 'Bearer x',
      });
      expect(answer.status).toBe(405); // the auth path exists, for POST only
      expect(fake.calls).toMatchObject({ refresh: 0, unknown: 1 });
      app = await createAuthApp(fakeOptions(fake, { refresh: false }));
      await app.auth.forceRefresh();
      expect(fake.calls).toMatchObject({ auth: 2, refresh: 0, unknown: 1 });
    });
  });

  describe('refresh token reuse (issue 11)', () => {
    it('strict by default: a reused refresh token gets 401 and is counted; the pair it bought still works', async () => {
      const fake = await track().start();
      const reused = fake.waitForCalls(1, 'refreshReused');
      const first = await login(fake);
      expect(fake.refreshTokenState(first.refresh_token)).toBe('unused');
      const renewed = await refreshWith(fake, first.refresh_token);
      expect(renewed.status).toBe(200);
      const second = renewed.json as Pair;
      expect(fake.refreshTokenState(first.refresh_token)).toBe('used');

      const again = await refreshWith(fake, first.refresh_token);
      expect(again).toEqual({ status: 401, json: { message: 'refresh token already used' } });
      expect(fake.calls).toMatchObject({ auth: 1, refresh: 2, refreshReused: 1, total: 3 });
      await expect(reused).resolves.toBeUndefined();

      // The reuse does not take down the pair the first refresh handed out.
      expect(fake.isAccessTokenValid(second.access_token)).toBe(true);
      expect(fake.refreshTokenState(second.refresh_token)).toBe('unused');
      const third = await refreshWith(fake, second.refresh_token);
      expect(third.status).toBe(200);
      expect(fake.isAccessTokenValid((third.json as Pair).access_token)).toBe(true);
      expect(fake.calls.refreshReused).toBe(1);
    });

    it('strictRefresh: false: a refresh token keeps working until revoked, and each reuse is counted', async () => {
      const fake = await track({ strictRefresh: false }).start();
      const { refresh_token } = await login(fake);
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await refreshWith(fake, refresh_token));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(new Set(answers.map((a) => (a.json as Pair).access_token)).size).toBe(3); // a new pair each time
      expect(fake.calls).toMatchObject({ refresh: 3, refreshReused: 2 });
      expect(fake.refreshTokenState(refresh_token)).toBe('used');
      fake.forgetExpiredTokens();
      expect(fake.issuedTokens()).toContain(refresh_token); // still usable: kept

      fake.revokeRefreshTokens();
      expect(await refreshWith(fake, refresh_token)).toEqual({
        status: 401,
        json: { message: 'refresh token expired or revoked' },
      });
      expect(fake.calls.refreshReused).toBe(3); // refused, as revoked, but a reuse all the same
    });

    it('a revoked or expired refresh token is refused without counting a reuse', async () => {
      const fake = await track({ refreshTtlMs: 60_000 }).start();
      const revoked = await login(fake);
      fake.revokeRefreshTokens();
      expect(fake.refreshTokenState(revoked.refresh_token)).toBe('revoked');
      expect(await refreshWith(fake, revoked.refresh_token)).toEqual({
        status: 401,
        json: { message: 'refresh token expired or revoked' },
      });

      const expired = await login(fake);
      fake.clockOffsetMs = 60_000;
      expect(fake.refreshTokenState(expired.refresh_token)).toBe('expired');
      expect((await refreshWith(fake, expired.refresh_token)).status).toBe(401);
      expect(fake.refreshTokenState('fake-rt-never-issued')).toBeUndefined();
      expect((await refreshWith(fake, 'fake-rt-never-issued')).status).toBe(401);
      expect(fake.calls).toMatchObject({ refresh: 3, refreshReused: 0 });
    });

    it('reuse is still recognised after forgetExpiredTokens(), until the token would have expired', async () => {
      const fake = await track({ refreshTtlMs: 60_000 }).start();
      const first = await login(fake);
      expect((await refreshWith(fake, first.refresh_token)).status).toBe(200);
      expect(fake.forgetExpiredTokens()).toBe(1); // the used refresh token
      expect(fake.issuedTokens()).not.toContain(first.refresh_token);
      expect(fake.refreshTokenState(first.refresh_token)).toBe('used');
      expect(await refreshWith(fake, first.refresh_token)).toEqual({
        status: 401,
        json: { message: 'refresh token already used' },
      });
      expect(fake.calls.refreshReused).toBe(1);

      // Past its refresh expiry the record goes too: a reuse is then an expired token, not counted.
      fake.clockOffsetMs = 60_000;
      expect(fake.refreshTokenState(first.refresh_token)).toBe('expired');
      fake.forgetExpiredTokens();
      expect(fake.refreshTokenState(first.refresh_token)).toBeUndefined();
      expect(await refreshWith(fake, first.refresh_token)).toEqual({
        status: 401,
        json: { message: 'refresh token expired or revoked' },
      });
      expect(fake.calls.refreshReused).toBe(1);
    });

    it('resetCounters() zeroes refreshReused with the others', async () => {
      const fake = await track().start();
      const { refresh_token } = await login(fake);
      await refreshWith(fake, refresh_token);
      await refreshWith(fake, refresh_token);
      expect(fake.calls.refreshReused).toBe(1);
      fake.resetCounters();
      expect(fake.calls).toEqual({ auth: 0, refresh: 0, agents: 0, unknown: 0, total: 0, refreshReused: 0 });
      await refreshWith(fake, refresh_token);
      expect(fake.calls).toMatchObject({ refresh: 1, refreshReused: 1 }); // still used: reset counts, not tokens
    });

    it('the module never reuses a refresh token against the strict fake', async () => {
      const fake = await track().start();
      app = await createAuthApp(fakeOptions(fake));
      await app.auth.getAccessToken();
      for (let i = 0; i < 3; i++) await app.auth.forceRefresh();
      expect(fake.calls).toMatchObject({ auth: 1, refresh: 3, refreshReused: 0 });
    });
  });

  describe('accessTokenExpiresAt()', () => {
    it('is the access_expire_at answered with the token, on the fake clock', async () => {
      const fake = await track({ accessTtlMs: 5_000, clockOffsetMs: 3_600_000 }).start();
      const first = await login(fake);
      const at = fake.accessTokenExpiresAt(first.access_token);
      expect(at).toBe(Date.parse(first.access_expire_at));
      expect(at).toBeGreaterThan(Date.now() + 3_600_000); // ahead with the fake's clock
      const renewed = (await refreshWith(fake, first.refresh_token)).json as Pair;
      expect(fake.accessTokenExpiresAt(renewed.access_token)).toBe(Date.parse(renewed.access_expire_at));
      fake.revokeAccessTokens();
      expect(fake.accessTokenExpiresAt(renewed.access_token)).toBe(Date.parse(renewed.access_expire_at));
    });

    it('is undefined for a token the fake never issued or has forgotten', async () => {
      const fake = await track({ accessTtlMs: 5_000 }).start();
      expect(fake.accessTokenExpiresAt('fake-at-never-issued')).toBeUndefined();
      const { access_token } = await login(fake);
      fake.clockOffsetMs = 5_000;
      fake.forgetExpiredTokens();
      expect(fake.accessTokenExpiresAt(access_token)).toBeUndefined();
    });
  });
});
