import { cpus, platform, release, totalmem } from 'node:os';
import type { Spread } from './stats';

/** Whether a figure met its target. `info`: no target; `pending`: the code to measure is not there yet. */
export type Verdict = 'met' | 'missed' | 'pending' | 'info';

/** One line of the results table. */
export interface Row {
  readonly caseId: string;
  readonly what: string;
  readonly module: string;
  readonly baseline: string;
  /** Module figure over baseline figure, per run; `undefined` when there is no ratio to show. */
  readonly ratio: Spread | string | undefined;
  readonly target: string;
  readonly verdict: Verdict;
}

/** The machine the figures come from. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly os: string;
  readonly memory: string;
  readonly node: string;
  readonly date: string;
}

export function describeMachine(): Machine {
  const all = cpus();
  return {
    cpu: all[0]?.model.trim() ?? 'unknown',
    cores: all.length,
    os: `${platform()} ${release()}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    date: new Date().toISOString(),
  };
}

export function formatSpread(value: Spread | string | undefined, unit = 'x'): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  // Three decimals where two would round a difference away (0.998 is not 1.00).
  const digits = Math.abs(value.median - 1) < 0.01 && value.median !== 1 ? 3 : 2;
  const f = (n: number): string => n.toFixed(digits);
  return `${f(value.median)}${unit} [${f(value.min)}-${f(value.max)}]`;
}

const HEADERS = ['#', 'Measure', 'Module', 'Baseline', 'Ratio: median [min-max]', 'Target', 'Result'] as const;
const VERDICT_TEXT: Record<Verdict, string> = { met: 'met', missed: 'MISSED', pending: 'pending', info: '-' };

function cells(row: Row): string[] {
  return [
    row.caseId,
    row.what,
    row.module,
    row.baseline,
    formatSpread(row.ratio),
    row.target,
    VERDICT_TEXT[row.verdict],
  ];
}

/** A fixed-width table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const table = [HEADERS.slice(), ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...table.map((line) => (line[i] ?? '').length)));
  const line = (parts: string[]): string => parts.map((part, i) => part.padEnd(widths[i] as number)).join(' | ');
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  return [line(table[0] as string[]), rule, ...table.slice(1).map(line)].join('\n');
}

/** The same table in Markdown. */
export function markdownTable(rows: readonly Row[]): string {
  const escape = (text: string): string => text.replace(/\|/g, '\\|');
  return [
    `| ${HEADERS.join(' | ')} |`,
    `|${HEADERS.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${cells(row).map(escape).join(' | ')} |`),
  ].join('\n');
}

export function machineLines(machine: Machine): string[] {
  return [
    `CPU: ${machine.cpu} (${machine.cores} cores)`,
    `OS: ${machine.os}, ${machine.memory} RAM`,
    `Node: ${machine.node}`,
    `Date: ${machine.date}`,
  ];
}
