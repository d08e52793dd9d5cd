/**
 * A minimal RESP2 client on `node:net` for the test helpers: one connection, commands pipelined, replies parsed
 * (simple strings, errors, integers, bulk strings, arrays). Cheaper than a `redis-cli` process per command where
 * a helper polls (topology.ts) or writes many keys at once (eviction.ts). Not for the code under test.
 */
import { connect } from 'node:net';

/** An error reply (`-ERR ...`, `-NOPERM ...`): `code` is its first word. */
export class RespError extends Error {
  readonly code: string;
  constructor(readonly reply: string) {
    super(reply);
    this.name = 'RespError';
    this.code = reply.split(' ', 1)[0] ?? '';
  }
}

export type RespValue = string | number | null | RespError | RespValue[];

/** RESP encoding of one command. */
export function encodeCommand(args: readonly (string | number)[]): string {
  const parts = args.map((arg) => String(arg));
  return `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`;
}

/** Parses one reply at `offset`: the value and where the next starts, or undefined while incomplete. */
function parseAt(buffer: Buffer, offset: number): { value: RespValue; next: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buffer[offset]!);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next: afterLine };
    case '-':
      return { value: new RespError(line), next: afterLine };
    case ':':
      return { value: Number(line), next: afterLine };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next: afterLine };
      if (buffer.length < afterLine + length + 2) return undefined;
      return { value: buffer.toString('utf8', afterLine, afterLine + length), next: afterLine + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: afterLine };
      const items: RespValue[] = [];
      let next = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseAt(buffer, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`Unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

export interface RespOptions {
  /** Default 5000 ms for the whole exchange. */
  timeoutMs?: number;
  /** Sends `AUTH user password` first (its reply is checked, not returned). */
  auth?: { user: string; password: string };
}

/**
 * Sends `commands` pipelined on one new connection to 127.0.0.1:`port` and resolves their replies in order
 * (error replies as `RespError` values, not rejections). Rejects when the connection fails or times out.
 */
export function sendCommands(
  port: number,
  commands: readonly (readonly (string | number)[])[],
  options: RespOptions = {},
): Promise<RespValue[]> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const all = options.auth ? [['AUTH', options.auth.user, options.auth.password], ...commands] : commands;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const replies: RespValue[] = [];
    let buffer: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) {
        reject(error);
        return;
      }
      if (options.auth) {
        const authReply = replies.shift();
        if (authReply instanceof RespError) {
          reject(new Error(`AUTH ${options.auth.user} on 127.0.0.1:${port} failed: ${authReply.reply}`));
          return;
        }
      }
      resolve(replies);
    };
    const timer = setTimeout(
      () => finish(new Error(`127.0.0.1:${port} did not answer ${all.length} command(s) within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('connect', () => socket.write(all.map((command) => encodeCommand(command)).join('')));
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      let offset = 0;
      for (;;) {
        let parsed: ReturnType<typeof parseAt>;
        try {
          parsed = parseAt(buffer, offset);
        } catch (error) {
          finish(error as Error);
          return;
        }
        if (parsed === undefined) break;
        replies.push(parsed.value);
        offset = parsed.next;
      }
      buffer = buffer.subarray(offset);
      if (replies.length >= all.length) finish();
    });
    socket.once('error', (error) => finish(new Error(`127.0.0.1:${port}: ${error.message}`)));
    socket.once('close', () => finish(new Error(`127.0.0.1:${port} closed the connection before all replies`)));
  });
}

/** One command; an error reply rejects with the `RespError`. */
export async function sendCommand(
  port: number,
  args: readonly (string | number)[],
  options?: RespOptions,
): Promise<Exclude<RespValue, RespError>> {
  const [reply] = await sendCommands(port, [args], options);
  if (reply instanceof RespError) throw reply;
  return reply as Exclude<RespValue, RespError>;
}

/** A flat `[field, value, field, value, ...]` reply (e.g. `SENTINEL MASTER`) as an object. */
export function fields(reply: RespValue): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

/** `INFO <section>` text as an object of its `name:value` lines. */
export function infoFields(info: RespValue): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of String(info).split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return out;
}
