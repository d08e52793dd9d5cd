/** A bad command line or environment: said on stderr, exit 64, nothing sent. */
export class UsageError extends Error {}

/** Runs Node's `parseArgs` for one subcommand: an unknown or malformed flag becomes a usage error. */
export function flagsOf<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    // Node's message names the flag (`Unknown option '--x'`), never the value of a secret.
    throw new UsageError((error as Error).message);
  }
}

/** A whole number in [min, max], or a usage error naming the flag. */
export function integerFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} expects a whole number from ${min} to ${max}.`);
  }
  return n;
}

/** Where the command line talks: the process's, or a test's. */
export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Whether a person can answer a question (stdin and stderr are terminals). */
  readonly interactive: boolean;
  readonly ask: (question: string) => Promise<string>;
  /** Aborted on Ctrl+C / SIGTERM. */
  readonly signal: AbortSignal;
}
