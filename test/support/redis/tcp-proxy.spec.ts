import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startRedis, type RedisProcess } from './redis-server';
import { startDelayProxy, type DelayProxy } from './tcp-proxy';

/** The delaying proxy's own checks: each direction waits delayMs, order is kept, stop() closes everything. */
describe('startDelayProxy', () => {
  let redis: RedisProcess;
  const proxies: DelayProxy[] = [];
  const clients: Redis[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    // Not one that has ended already: ioredis would then leave a 2 s timer behind (its stream is closed).
    for (const client of clients.splice(0)) if (client.status !== 'end') client.disconnect();
    await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function proxy(delayMs: number, targetPort = redis.port): Promise<DelayProxy> {
    const started = await startDelayProxy({ targetPort, delayMs });
    proxies.push(started);
    return started;
  }

  function client(url: string): Redis {
    const c = new Redis(url, { maxRetriesPerRequest: 0, enableReadyCheck: false, retryStrategy: () => null });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }

  /** Round trip of one PING through `c`, in ms. */
  async function pingMs(c: Redis): Promise<number> {
    const started = performance.now();
    expect(await c.ping()).toBe('PONG');
    return performance.now() - started;
  }

  it('delays each direction: a round trip takes at least 2 x delayMs; setDelay applies from then on', async () => {
    const p = await proxy(150);
    expect(p.url).toBe(`redis://127.0.0.1:${p.port}`);
    const c = client(p.url);
    await c.ping(); // connected
    const slow = await pingMs(c);
    expect(slow).toBeGreaterThanOrEqual(300);
    p.setDelay(0);
    expect(p.delayMs).toBe(0);
    const fast = await pingMs(c);
    p.setDelay(250);
    const slower = await pingMs(c);
    expect(slower).toBeGreaterThanOrEqual(500);
    console.log(
      `PING through the proxy: ${Math.round(slow)} ms at 150 ms, ${Math.round(fast)} ms at 0, ${Math.round(slower)} ms at 250`,
    );
    expect(() => p.setDelay(-1)).toThrow(/delayMs must be a finite number >= 0/);
  });

  it('keeps the order of pipelined commands and their replies, also when the delay drops meanwhile', async () => {
    const p = await proxy(200);
    const c = client(p.url);
    await c.ping();
    const replies = Array.from({ length: 50 }, () => c.incr('order:n'));
    setTimeout(() => p.setDelay(0), 50); // later chunks get a shorter delay, but must not overtake
    const counts = await Promise.all(replies);
    expect(counts).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const more = await Promise.all([c.set('order:49', '49'), c.incr('order:n'), p.setDelay(100), c.get('order:n')]);
    expect(more).toEqual(['OK', 51, undefined, '51']);
    expect(await redis.command('GET', 'order:49')).toBe('49');
  });

  it('keeps byte order in both directions for many small chunks (raw echo server)', async () => {
    const echo: Server = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    try {
      const p = await proxy(20, (echo.address() as { port: number }).port);
      const socket: Socket = connect({ port: p.port, host: '127.0.0.1' });
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      let sent = '';
      for (let i = 0; i < 200; i++) {
        const piece = `${i},`;
        sent += piece;
        socket.write(piece);
        if (i % 20 === 0) p.setDelay(i % 40 === 0 ? 0 : 30);
        if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const deadline = Date.now() + 5_000;
      while (received.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received).toBe(sent);
      socket.destroy();
    } finally {
      echo.close();
    }
  });

  it('stop() closes the client connections and the listener', async () => {
    const p = await proxy(10);
    const c = client(p.url);
    await c.ping();
    expect(p.connections).toBe(1);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    await p.stop();
    await closed;
    expect(p.connections).toBe(0);
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect({ port: p.port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    await expect(p.stop()).resolves.toBeUndefined();
  });

  it('a client disconnect through the proxy leaves no connection behind on Redis', async () => {
    const p = await proxy(50);
    const c = client(p.url);
    await c.client('SETNAME', 'through-proxy');
    expect(await redis.command('CLIENT', 'LIST')).toContain('name=through-proxy');
    await c.quit();
    const deadline = Date.now() + 3_000;
    while ((await redis.command('CLIENT', 'LIST')).includes('name=through-proxy')) {
      if (Date.now() > deadline) throw new Error('the upstream connection stayed open');
      await new Promise((r) => setTimeout(r, 20));
    }
    const drained = Date.now() + 3_000;
    while (p.connections > 0 && Date.now() < drained) await new Promise((r) => setTimeout(r, 20));
    expect(p.connections).toBe(0);
  });
});
