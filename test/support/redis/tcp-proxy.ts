/**
 * A TCP proxy on 127.0.0.1 that delays every chunk, in each direction, by `delayMs` (node:net only): a slow
 * Redis (a far region, a saturated link) in front of a real one. Order is kept: a chunk is never forwarded
 * before an earlier one of the same direction, also when the delay is lowered meanwhile.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface DelayProxyOptions {
  /** Where the proxy forwards to (on `targetHost`, default 127.0.0.1). */
  targetPort: number;
  targetHost?: string;
  /** The delay of each chunk in each direction: a round trip takes at least 2 x delayMs. */
  delayMs: number;
  /** @default a free port */
  port?: number;
}

export interface DelayProxy {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** The delay applied to chunks received from now on. */
  readonly delayMs: number;
  /** Client connections open through the proxy. */
  readonly connections: number;
  /** Sets the delay for chunks received from now on (earlier ones keep theirs; order is kept). */
  setDelay(ms: number): void;
  /** Stops listening and destroys every socket (both sides). Idempotent. */
  stop(): Promise<void>;
}

interface Pending {
  due: number;
  chunk?: Buffer;
  end?: true;
}

/** Forwards `from`'s chunks (and its end) to `to`, each `delay()` ms after it arrived, in order. */
function delayedPipe(from: Socket, to: Socket, delay: () => number): { clear(): void } {
  const queue: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let lastDue = 0;
  const pump = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const item = queue.shift()!;
      if (to.destroyed || to.writableEnded) continue;
      if (item.end) to.end();
      else to.write(item.chunk!);
    }
    if (queue.length > 0) timer = setTimeout(pump, Math.max(1, Math.ceil(queue[0]!.due - now)));
  };
  const push = (item: Omit<Pending, 'due'>): void => {
    lastDue = Math.max(performance.now() + delay(), lastDue);
    queue.push({ ...item, due: lastDue });
    if (timer === undefined) timer = setTimeout(pump, Math.max(0, Math.ceil(lastDue - performance.now())));
  };
  from.on('data', (chunk: Buffer) => push({ chunk }));
  from.on('end', () => push({ end: true }));
  return {
    clear: () => {
      clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
    },
  };
}

/** Starts the proxy; resolves once it listens. */
export function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  let delayMs = checkDelay(options.delayMs);
  const sockets = new Set<Socket>();
  const pipes = new Set<{ clear(): void }>();
  let clients = 0;

  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ port: options.targetPort, host: targetHost, allowHalfOpen: true });
    clients++;
    sockets.add(client);
    sockets.add(upstream);
    const up = delayedPipe(client, upstream, () => delayMs);
    const down = delayedPipe(upstream, client, () => delayMs);
    pipes.add(up);
    pipes.add(down);
    let closed = false;
    const forget = (): void => {
      if (closed) return;
      closed = true;
      clients--;
      up.clear();
      down.clear();
      pipes.delete(up);
      pipes.delete(down);
      sockets.delete(client);
      sockets.delete(upstream);
    };
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      forget();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', closeBoth);
      // A clean end is forwarded in order (after the data before it) and the other side closes in its time; a
      // side that went away with an error (a reset) takes the other with it at once.
      socket.on('close', (hadError: boolean) => {
        if (hadError) closeBoth();
        else if (client.destroyed && upstream.destroyed) forget();
      });
    }
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port ?? 0, host: '127.0.0.1' }, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      let stopping: Promise<void> | undefined;
      resolve({
        host: '127.0.0.1',
        port,
        url: `redis://127.0.0.1:${port}`,
        get delayMs() {
          return delayMs;
        },
        get connections() {
          return clients;
        },
        setDelay: (ms) => {
          delayMs = checkDelay(ms);
        },
        stop: () =>
          (stopping ??= new Promise<void>((done) => {
            server.close(() => done());
            for (const pipe of pipes) pipe.clear();
            pipes.clear();
            for (const socket of sockets) socket.destroy();
            sockets.clear();
          })),
      });
    });
  });
}

function checkDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`delayMs must be a finite number >= 0 (got ${ms})`);
  return ms;
}
