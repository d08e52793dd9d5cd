import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { StoredTransferToken } from '../token-store/transfer-token-store.interface';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The entry as it is encrypted: short names, times on Redis' clock. */
interface Plain {
  a: string;
  r?: string;
  s: number;
  u: number;
  ru?: number;
  ae: number;
  re: number;
  o: number;
  /** The fleet's login cool-down: until (Redis' clock), rejected logins in a row, the rejected secret's tag. */
  lb?: number;
  rl?: number;
  rs?: string;
}

/**
 * @internal Encrypts an entry with AES-256-GCM, its deadlines moved by `shiftMs` (from the writer's clock to
 * Redis'). The additional data binds it to its key and version: an entry copied to another agent's key, or
 * written back with another version, does not decrypt; nothing outside it says when it expires.
 */
export function seal(entry: StoredTransferToken, key: Uint8Array, aad: string, shiftMs: number): string {
  const plain: Plain = {
    a: entry.accessToken,
    s: entry.staleAt + shiftMs,
    u: entry.usableUntil + shiftMs,
    ae: entry.accessExpiresAt,
    re: entry.refreshExpiresAt,
    o: entry.obtainedAt + shiftMs,
  };
  if (entry.refreshToken !== undefined && entry.refreshUsableUntil !== undefined) {
    plain.r = entry.refreshToken;
    plain.ru = entry.refreshUsableUntil + shiftMs;
  }
  if (entry.loginBlockedUntil !== undefined) {
    plain.lb = entry.loginBlockedUntil + shiftMs;
    plain.rl = entry.rejectedLogins ?? 1;
    if (entry.rejectedSecret !== undefined) plain.rs = entry.rejectedSecret;
  }
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/**
 * @internal The entry, its times moved by `shiftMs` (from Redis' clock to the reader's); throws when it does
 * not decrypt (another key, tampered, truncated) or holds what no writer wrote.
 */
export function open(
  sealed: string,
  key: Uint8Array,
  aad: string,
  version: number,
  shiftMs: number,
): StoredTransferToken {
  const data = Buffer.from(sealed, 'base64');
  if (data.length <= IV_BYTES + TAG_BYTES) throw new EntryUnreadableError();
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const text = Buffer.concat([decipher.update(data.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
    const p = JSON.parse(text) as Plain;
    const times = [p.s, p.u, p.ae, p.re, p.o];
    if (typeof p.a !== 'string' || !times.every((t) => typeof t === 'number' && Number.isFinite(t))) {
      throw new EntryUnreadableError();
    }
    const entry: Record<string, unknown> = {
      version,
      staleAt: p.s + shiftMs,
      usableUntil: p.u + shiftMs,
      accessExpiresAt: p.ae,
      refreshExpiresAt: p.re,
      obtainedAt: p.o + shiftMs,
    };
    // Out of sight of `inspect` and `JSON.stringify`, as in the entries the lifecycle writes.
    Object.defineProperty(entry, 'accessToken', { value: p.a, enumerable: false });
    if (typeof p.r === 'string' && typeof p.ru === 'number') {
      Object.defineProperty(entry, 'refreshToken', { value: p.r, enumerable: false });
      entry['refreshUsableUntil'] = p.ru + shiftMs;
    }
    if (typeof p.lb === 'number' && Number.isFinite(p.lb)) {
      entry['loginBlockedUntil'] = p.lb + shiftMs;
      entry['rejectedLogins'] = typeof p.rl === 'number' && p.rl > 0 ? p.rl : 1;
      if (typeof p.rs === 'string') entry['rejectedSecret'] = p.rs;
    }
    return entry as unknown as StoredTransferToken;
  } catch {
    throw new EntryUnreadableError();
  }
}

/** @internal The stored entry does not decrypt with this process' key. Names nothing of it. */
export class EntryUnreadableError extends Error {
  override readonly name = 'EntryUnreadableError';
  constructor() {
    super('The stored token entry does not decrypt with this key (another encryption key, or altered).');
  }
}
