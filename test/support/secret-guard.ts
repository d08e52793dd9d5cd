import { inspect } from 'node:util';
import type { AuthApp } from './auth-app';

interface Seen {
  where: string;
  text: string;
}

const DEEP = { depth: 12, showHidden: true, getters: false, maxArrayLength: 1_000, maxStringLength: null } as const;

/**
 * Collects every rendering of everything a run produced (log lines, events, errors with their stacks
 * and causes, status snapshots, `inspect` and `JSON.stringify` of objects), then looks for secrets in
 * it. A leak is reported by where it was found, never by the secret itself.
 */
export class SecretGuard {
  private readonly seen: Seen[] = [];
  private readonly apps: { where: string; app: AuthApp }[] = [];
  private readonly console: string[] = [];
  private readonly restoreConsole: (() => void)[] = [];

  /** How many renderings were collected (so that a clean result means something). */
  get size(): number {
    return this.seen.length;
  }

  /** Records whatever the app logs and emits (read when {@link harvest} runs, so include shutdown). */
  watch(where: string, app: AuthApp): void {
    this.apps.push({ where, app });
  }

  /** Records `console.*` output until {@link stopCapturingConsole}. */
  captureConsole(): void {
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      const original = console[level];
      console[level] = (...args: unknown[]): void => {
        this.console.push(args.map((a) => (typeof a === 'string' ? a : inspect(a, DEEP))).join(' '));
      };
      this.restoreConsole.push(() => (console[level] = original));
    }
  }

  stopCapturingConsole(): void {
    for (const restore of this.restoreConsole.splice(0)) restore();
  }

  text(where: string, text: string): void {
    this.seen.push({ where, text });
  }

  /** `String()`, `inspect` (deep, hidden fields included) and `JSON.stringify` of `value`. */
  value(where: string, value: unknown): void {
    this.text(
      `${where} (String)`,
      safe(() => String(value)),
    );
    this.text(
      `${where} (inspect)`,
      safe(() => inspect(value, DEEP)),
    );
    this.text(
      `${where} (inspect, plain)`,
      safe(() => inspect(value)),
    );
    this.text(
      `${where} (JSON)`,
      safe(() => JSON.stringify(value) ?? ''),
    );
  }

  /** The error as every tool would show it, and each error of its `cause` chain likewise. */
  error(where: string, error: unknown): void {
    let current: unknown = error;
    for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
      const at = depth === 0 ? where : `${where} cause#${depth}`;
      this.value(at, current);
      if (current instanceof Error) {
        this.text(`${at} (message)`, current.message);
        this.text(`${at} (stack)`, current.stack ?? '');
        this.text(
          `${at} (own keys)`,
          safe(() => JSON.stringify(Object.getOwnPropertyNames(current))),
        );
        current = current.cause;
      } else current = undefined;
    }
  }

  /** Awaits `promise`, recording its rejection; a resolved value (a token, by design) is not recorded. */
  async settle<T>(where: string, promise: Promise<T>): Promise<T | undefined> {
    try {
      return await promise;
    } catch (error) {
      this.error(where, error);
      return undefined;
    }
  }

  /** Reads the log lines, events and status of every watched app. */
  harvest(): void {
    for (const { where, app } of this.apps.splice(0)) {
      app.logger.lines.forEach((line, i) => this.text(`${where} log#${i}`, line));
      app.events.forEach((event, i) => this.value(`${where} event#${i} ${event.type}`, event));
      this.value(`${where} getStatus()`, app.auth.getStatus());
    }
    this.console.splice(0).forEach((line, i) => this.text(`console#${i}`, line));
  }

  /**
   * Where any of `secrets` (or a 12-character piece of one) appears. Pieces catch truncated or
   * sliced leaks; they are taken from the random part of each secret (its public prefix removed).
   */
  leaks(secrets: readonly string[]): string[] {
    this.harvest();
    const needles = secrets.flatMap((secret, index) => pieces(secret).map((piece) => ({ piece, index })));
    const found: string[] = [];
    for (const { where, text } of this.seen) {
      const hit = needles.find(({ piece }) => text.includes(piece));
      if (hit !== undefined) found.push(`${where}: secret #${hit.index}`);
    }
    return found;
  }
}

/** Prefixes that mark a value as the fake's (or the test's) but carry no secret. */
const PUBLIC_PREFIX = /^(?:fake-(?:at|rt|secret)-|test-secret-)/;

function pieces(secret: string): string[] {
  const random = secret.replace(PUBLIC_PREFIX, '');
  const out = [secret];
  for (let i = 0; i + 12 <= random.length; i += 6) out.push(random.slice(i, i + 12));
  return out;
}

function safe(render: () => string): string {
  try {
    return render();
  } catch (error) {
    return `<render failed: ${error instanceof Error ? error.name : typeof error}>`;
  }
}
