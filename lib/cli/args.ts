/** A bad command line or environment: said on stderr, exit 64, nothing sent. */
export class UsageError extends Error {}

/** A flag's name as it may be shown: its name only (up to `=`), short, in the characters of a flag. */
const SHOWABLE_FLAG = /^-{1,2}[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;

/**
 * Runs Node's `parseArgs` for one subcommand: an unknown or malformed flag becomes a usage error. Node's
 * messages quote what was typed (`Unexpected argument '<value>'`): a secret pasted on the command line
 * would be printed, and CI logs keep stderr. So the message is rebuilt from the error's code, never
 * relayed: a positional argument is not shown, an unknown flag is named up to its `=` (and only when it
 * looks like a flag), a misused flag is named as the subcommand declares it.
 */
export function flagsOf<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(`${command} takes no positional arguments (the argument is not shown).`);
    }
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = (/^Unknown option '([^']*)'/.exec(text)?.[1] ?? '').split('=')[0] ?? '';
      throw new UsageError(
        SHOWABLE_FLAG.test(name)
          ? `Unknown option '${name}' for ${command}.`
          : `Unknown option for ${command} (not shown).`,
      );
    }
    // Node names the option as declared (`'-y, --yes'`, `'--base-url <value>'`): ours, never a value.
    const named = /^Option '([^']*)'/.exec(text)?.[1]?.replace(/ <value>$/, '');
    const declared = named !== undefined && /^-[\w, -]{0,64}$/.test(named) ? named : undefined;
    throw new UsageError(
      declared === undefined
        ? `A flag of ${command} is malformed (a missing value, or a value given to a flag that takes none).`
        : `Option '${declared}' of ${command} is malformed (a missing value, or a value given to a flag that takes none).`,
    );
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
  /** Aborted on Ctrl+C (reason `'SIGINT'`) or SIGTERM (reason `'SIGTERM'`). */
  readonly signal: AbortSignal;
}

/** The exit code of a run stopped by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM). */
export function interruptedExit(signal: AbortSignal): number {
  return signal.reason === 'SIGTERM' ? 143 : 130;
}
