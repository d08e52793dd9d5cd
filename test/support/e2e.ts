import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, sep } from 'node:path';
import { inspect } from 'node:util';
import { TransferAuthError, type TransferAuthErrorCode } from 'nestjs-freedompay-transfer-auth';
import type { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

/** A real (short) pause, for tests that must let real sockets and timers run. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `predicate` every `intervalMs` until it holds; throws (with `what`) after `timeoutMs`. The
 * timeout only bounds a broken test: a passing test returns as soon as the state is reached.
 */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  { timeoutMs = 10_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await sleep(intervalMs);
  }
}

/** Awaits `promise` and returns the `TransferAuthError` it rejected with; fails if it resolved or threw anything else. */
export async function captureAuthError(promise: Promise<unknown>): Promise<TransferAuthError> {
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    if (error instanceof TransferAuthError) return error;
    throw new Error(`Expected a TransferAuthError, got ${inspect(error)}`);
  }
  throw new Error(`Expected a TransferAuthError, but the promise resolved (${typeof result}).`);
}

/** Asserts `error` is a `TransferAuthError` with `code`. */
export function expectAuthError(error: unknown, code: TransferAuthErrorCode): asserts error is TransferAuthError {
  expect(error).toBeInstanceOf(TransferAuthError);
  expect((error as TransferAuthError).code).toBe(code);
}

/** Starts `server` on a free port of 127.0.0.1; returns the port. */
export async function listenLocally(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Closes `server`, dropping the connections still open (nothing when it is undefined). */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  const port = await listenLocally(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A local HTTP server on a free port of 127.0.0.1 that answers with `handle`. */
export abstract class LocalHttpServer {
  private server: Server | undefined;
  private port = 0;

  protected abstract handle(req: IncomingMessage, res: ServerResponse): void;

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    this.port = await listenLocally(server);
    this.server = server;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeServer(server);
  }
}

/** A plain local HTTP server that counts every request it gets: the target of redirect tests. */
export class CountingServer extends LocalHttpServer {
  hits = 0;

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    this.hits++;
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  }
}

const lastUrls = new WeakMap<FakeTransferServer, string>();

/**
 * `fake.url`, remembered: for a fake stopped since (whose `url` throws), the url it had when last read
 * here, a port that now refuses connections. What tests of "connection refused" point the module at.
 */
export function fakeUrl(fake: FakeTransferServer): string {
  try {
    const url = fake.url;
    lastUrls.set(fake, url);
    return url;
  } catch (error) {
    const last = lastUrls.get(fake);
    if (last === undefined) throw error;
    return last;
  }
}

/** The agent secret and every token the fake ever issued: none of them may show up anywhere. */
export function secretsOf(fake: FakeTransferServer): string[] {
  return [fake.agentSecret, ...fake.issuedTokens()];
}

/** Every secret of `secrets` that occurs in `text` (an empty list is the expected answer). */
export function leakedSecrets(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((secret) => text.includes(secret));
}

/** Everything an error shows the world: message, stack, JSON, `inspect` (with its cause). */
export function describeError(error: unknown): string {
  const parts = [inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error)];
  if (error instanceof Error) {
    parts.push(error.message, error.stack ?? '', inspect(error.cause, { depth: 10, showHidden: true }));
  }
  return parts.join('\n');
}

const LIB_DIR = join(__dirname, '..', '..', 'lib') + sep;
const LIB_TESTING_DIR = join(LIB_DIR, 'testing') + sep;

/**
 * Records every timer set through the global `setTimeout` by code under `lib/` while installed, and
 * which of them are still pending (neither fired nor cleared). Restore with `restore()`.
 */
export class LibTimerTracker {
  private readonly pending = new Map<unknown, string>();
  private readonly spies: jest.SpyInstance[] = [];
  created = 0;

  install(): this {
    const realSetTimeout = global.setTimeout;
    const realClearTimeout = global.clearTimeout;
    const pending = this.pending;
    const setSpy = jest.spyOn(global, 'setTimeout').mockImplementation(((
      callback: (...args: unknown[]) => void,
      ms?: number,
      ...args: unknown[]
    ) => {
      const stack = new Error().stack ?? '';
      const caller = stack
        .split('\n')
        .slice(1)
        .find((line) => !line.includes(__filename) && !line.includes('jest-mock'));
      const fromLib = caller !== undefined && caller.includes(LIB_DIR) && !caller.includes(LIB_TESTING_DIR);
      const handle: NodeJS.Timeout = realSetTimeout(
        (...inner: unknown[]) => {
          pending.delete(handle);
          callback(...inner);
        },
        ms,
        ...args,
      );
      if (fromLib) {
        this.created++;
        pending.set(handle, stack);
      }
      return handle;
    }) as unknown as typeof setTimeout);
    const clearSpy = jest.spyOn(global, 'clearTimeout').mockImplementation(((
      handle?: NodeJS.Timeout | string | number,
    ) => {
      pending.delete(handle);
      realClearTimeout(handle);
    }) as typeof clearTimeout);
    this.spies.push(setSpy, clearSpy);
    return this;
  }

  /** Stacks of lib timers that are still pending. */
  pendingStacks(): string[] {
    return [...this.pending.values()];
  }

  restore(): void {
    for (const spy of this.spies.splice(0)) spy.mockRestore();
    this.pending.clear();
  }
}
