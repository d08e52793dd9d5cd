import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SoakMetricPoint, SoakMetricsFile, SoakMetricsSample } from './soak-metrics';

/**
 * `npm run chart:observability [-- <metrics.json> [<chart.svg>]] [--no-png]`: draws the file that
 * `npm run soak -- --metrics-out <metrics.json>` wrote as an SVG line chart of three panels over the run
 * (renewals by kind and outcome, cumulative; the access token's time left; caller waits per read
 * interval: how many, and the longest), then converts it to a PNG beside it with ImageMagick's `convert`.
 * Defaults: soak-dist/observability-soak.json, docs/observability-soak.svg (and .png).
 */
const PREFIX = 'freedompay.transfer.auth.';
const KIND = `${PREFIX}kind`;
const OUTCOME = `${PREFIX}outcome`;
const NAME = `${PREFIX}name`;

const WIDTH = 1100;
const LEFT = 80;
const RIGHT = 300;
const PLOT_WIDTH = WIDTH - LEFT - RIGHT;
const PANEL_HEIGHT = 170;
const PANEL_TOPS = [90, 330, 570] as const;
const HEIGHT = PANEL_TOPS[2] + PANEL_HEIGHT + 60;
const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';
const OK_COLORS: Record<string, string> = { 'login ok': '#1f77b4', 'refresh ok': '#2ca02c' };
const ERROR_COLORS = ['#d62728', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

interface Point {
  readonly t: number;
  readonly v: number;
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fixed = (n: number): string => (Math.round(n * 10) / 10).toString();

/** Round steps (1, 2, 5 × 10^n) giving about `count` ticks from 0 to at least `max`. */
function ticks(max: number, count = 5, minStep = 0): { top: number; step: number } {
  const raw = Math.max(max / count, minStep, 1e-9);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  return { top: Math.max(step, Math.ceil(max / step) * step), step };
}

function pointsOf(sample: SoakMetricsSample, metric: string): SoakMetricPoint[] {
  return sample.points.filter((p) => p.metric === PREFIX + metric);
}

/** The chart of a soak's metrics, as SVG text. */
export function chart(file: SoakMetricsFile): string {
  const samples = [...file.samples].sort((a, b) => a.t - b.t);
  const names = new Set(samples.flatMap((s) => s.points.map((p) => String(p.attributes[NAME]))));
  const tEnd = Math.max(1, ...samples.map((s) => s.t));
  const tTicks = ticks(tEnd, 10);
  const x = (t: number): number => LEFT + (t / tEnd) * PLOT_WIDTH;
  const out: string[] = [];

  // Renewals, cumulative, one series per kind and outcome (0 until its first).
  const renewalSeries = new Map<string, Point[]>();
  for (const sample of samples) {
    for (const p of pointsOf(sample, 'renewals')) {
      const key = `${String(p.attributes[KIND])} ${String(p.attributes[OUTCOME])}`;
      if (!renewalSeries.has(key)) renewalSeries.set(key, [{ t: 0, v: 0 }]);
      renewalSeries.get(key)?.push({ t: sample.t, v: p.value ?? 0 });
    }
  }
  const keys = [...renewalSeries.keys()].sort((a, b) => {
    const rank = (k: string): number => (k in OK_COLORS ? Object.keys(OK_COLORS).indexOf(k) : 9);
    return rank(a) - rank(b) || a.localeCompare(b);
  });
  let errorColor = 0;
  const colors = new Map(keys.map((k) => [k, OK_COLORS[k] ?? ERROR_COLORS[errorColor++ % ERROR_COLORS.length]]));

  const access: Point[] = [];
  const refresh: Point[] = [];
  const waits: { t: number; ok: number; failed: number; maxMs: number }[] = [];
  for (const sample of samples) {
    const left = pointsOf(sample, 'access_token.time_left_seconds')[0]?.value;
    if (left !== undefined) access.push({ t: sample.t, v: left });
    const refreshLeft = pointsOf(sample, 'refresh_token.time_left_seconds')[0]?.value;
    if (refreshLeft !== undefined) refresh.push({ t: sample.t, v: refreshLeft });
    let ok = 0;
    let failed = 0;
    let maxMs = 0;
    for (const p of pointsOf(sample, 'wait.duration_seconds')) {
      const count = p.histogram?.count ?? 0;
      if (p.attributes[OUTCOME] === 'ok') ok += count;
      else failed += count;
      if (count > 0) maxMs = Math.max(maxMs, (p.histogram?.max ?? 0) * 1000);
    }
    waits.push({ t: sample.t, ok, failed, maxMs });
  }

  const run = file.run;
  const num = (key: string): number => Number(run[key]);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="32" font-size="20" font-weight="bold" fill="#222">nestjs-freedompay-transfer-auth: OpenTelemetry metrics during a soak</text>`,
    `<text x="${LEFT}" y="56" font-size="13" fill="#444">${escape(
      `${num('seconds')} s, ${num('callers')} callers, ${num('accessTtlMs') / 1000} s access tokens, ` +
        `${num('refreshTtlMs') / 1000} s refresh tokens, ~${Math.round(num('faultRate') * 100)}% of upstream requests failing at random, ` +
        `upstream clock ${num('clockOffsetMs') / 1000} s ahead; ` +
        `read every ${file.intervalMs / 1000} s (registration: ${[...names].join(', ')})`,
    )}</text>`,
  );

  const panel = (
    index: 0 | 1 | 2,
    title: string,
    yMax: number,
    unit: string,
    minStep = 0,
  ): { y: (v: number) => number; top: number } => {
    const top = PANEL_TOPS[index];
    const { top: yTop, step } = ticks(yMax, 5, minStep);
    const y = (v: number): number => top + PANEL_HEIGHT - (v / yTop) * PANEL_HEIGHT;
    out.push(`<text x="${LEFT}" y="${top - 12}" font-size="15" font-weight="bold" fill="#222">${escape(title)}</text>`);
    for (let v = 0; v <= yTop + step / 2; v += step) {
      out.push(
        `<line x1="${LEFT}" x2="${LEFT + PLOT_WIDTH}" y1="${fixed(y(v))}" y2="${fixed(y(v))}" stroke="#e4e4e4"/>`,
        `<text x="${LEFT - 8}" y="${fixed(y(v) + 4)}" font-size="11" text-anchor="end" fill="#555">${fixed(v)}</text>`,
      );
    }
    for (let t = 0; t <= tEnd + 1e-9; t += tTicks.step) {
      out.push(
        `<line x1="${fixed(x(t))}" x2="${fixed(x(t))}" y1="${top + PANEL_HEIGHT}" y2="${top + PANEL_HEIGHT + 4}" stroke="#888"/>`,
        `<text x="${fixed(x(t))}" y="${top + PANEL_HEIGHT + 17}" font-size="11" text-anchor="middle" fill="#555">${fixed(t)}</text>`,
      );
    }
    out.push(
      `<rect x="${LEFT}" y="${top}" width="${PLOT_WIDTH}" height="${PANEL_HEIGHT}" fill="none" stroke="#888"/>`,
      `<text transform="translate(${LEFT - 50},${top + PANEL_HEIGHT / 2}) rotate(-90)" font-size="12" text-anchor="middle" fill="#444">${escape(unit)}</text>`,
    );
    return { y, top };
  };

  const legend = (top: number, row: number, color: string, label: string, dashed = false): void => {
    const ly = top + 12 + row * 20;
    const lx = LEFT + PLOT_WIDTH + 50;
    out.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${lx + 30}" y="${ly + 4}" font-size="12" fill="#333">${escape(label)}</text>`,
    );
  };
  // A path, not a polyline: ImageMagick's own SVG renderer closes polylines.
  const line = (points: readonly Point[], y: (v: number) => number, color: string, extra = ''): void => {
    // Repeated points and the middle of straight runs left out: that renderer draws stray edges on them.
    const xy = points
      .map((p) => [fixed(x(p.t)), fixed(y(p.v))] as const)
      .filter(([px, py], i, all) => all[i - 1]?.[0] !== px || all[i - 1]?.[1] !== py);
    const kept = xy.filter(([px, py], i) => {
      const [ax, ay] = xy[i - 1] ?? [];
      const [bx, by] = xy[i + 1] ?? [];
      return !((ay === py && by === py) || (ax === px && bx === px));
    });
    if (kept.length === 0) return;
    const d = kept.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${px} ${py}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${extra}/>`);
  };

  // 1. Renewals.
  const renewalMax = Math.max(1, ...[...renewalSeries.values()].flat().map((p) => p.v));
  const p1 = panel(0, 'Renewals by kind and outcome (cumulative): ...renewals', renewalMax, 'upstream calls', 1);
  keys.forEach((key, row) => {
    const series = renewalSeries.get(key) ?? [];
    const steps = series.flatMap((p, i) => (i === 0 ? [p] : [{ t: p.t, v: series[i - 1]?.v ?? 0 }, p]));
    line(steps, p1.y, colors.get(key) ?? '#000');
    legend(p1.top, row, colors.get(key) ?? '#000', `${key}: ${series.at(-1)?.v ?? 0}`);
  });

  // 2. Time left.
  const leftMax = Math.max(1, ...access.map((p) => p.v), ...refresh.map((p) => p.v));
  const p2 = panel(
    1,
    'Time left of the cached tokens: ...access_token.time_left_seconds, ...refresh_token.time_left_seconds',
    leftMax,
    's',
  );
  line(refresh, p2.y, '#9e9e9e', ' stroke-dasharray="5 3"');
  line(access, p2.y, '#1f77b4');
  legend(p2.top, 0, '#1f77b4', 'access token');
  legend(p2.top, 1, '#9e9e9e', 'refresh token', true);

  // 3. Caller waits: stacked bars (count per interval), and the longest wait (right axis, ms).
  const countMax = Math.max(1, ...waits.map((w) => w.ok + w.failed));
  const maxWaitMs = Math.max(1, ...waits.map((w) => w.maxMs));
  const p3 = panel(
    2,
    'Caller waits per interval (no usable token cached): ...wait.duration_seconds',
    countMax,
    'callers',
    1,
  );
  const barWidth = Math.max(1, (PLOT_WIDTH / Math.max(1, samples.length)) * 0.7);
  for (const w of waits) {
    const from = Math.max(LEFT, x(w.t) - barWidth / 2);
    const left = fixed(from);
    const width = fixed(x(w.t) + barWidth / 2 - from);
    const okTop = p3.y(w.ok);
    if (w.ok > 0) {
      out.push(
        `<rect x="${left}" y="${fixed(okTop)}" width="${width}" height="${fixed(p3.y(0) - okTop)}" fill="#7fb3dc" stroke="none"/>`,
      );
    }
    if (w.failed > 0) {
      const failedTop = p3.y(w.ok + w.failed);
      out.push(
        `<rect x="${left}" y="${fixed(failedTop)}" width="${width}" height="${fixed(okTop - failedTop)}" fill="#e88b8b" stroke="none"/>`,
      );
    }
  }
  const { top: msTop, step: msStep } = ticks(maxWaitMs);
  const yMs = (ms: number): number => p3.top + PANEL_HEIGHT - (ms / msTop) * PANEL_HEIGHT;
  for (let v = 0; v <= msTop + msStep / 2; v += msStep) {
    out.push(
      `<text x="${LEFT + PLOT_WIDTH + 6}" y="${fixed(yMs(v) + 4)}" font-size="11" fill="#b35900">${fixed(v)}</text>`,
    );
  }
  for (const w of waits.filter((w) => w.ok + w.failed > 0)) {
    out.push(`<circle cx="${fixed(x(w.t))}" cy="${fixed(yMs(w.maxMs))}" r="3" fill="#e67300" stroke="none"/>`);
  }
  const legendTop = p3.top + 34;
  out.push(
    `<text transform="translate(${LEFT + PLOT_WIDTH + 42},${p3.top + PANEL_HEIGHT / 2}) rotate(90)" font-size="12" text-anchor="middle" fill="#b35900">longest wait (ms)</text>`,
    `<rect x="${LEFT + PLOT_WIDTH + 50}" y="${legendTop + 2}" width="22" height="10" fill="#7fb3dc" stroke="none"/>`,
    `<text x="${LEFT + PLOT_WIDTH + 80}" y="${legendTop + 11}" font-size="12" fill="#333">waits that got a token</text>`,
    `<rect x="${LEFT + PLOT_WIDTH + 50}" y="${legendTop + 22}" width="22" height="10" fill="#e88b8b" stroke="none"/>`,
    `<text x="${LEFT + PLOT_WIDTH + 80}" y="${legendTop + 31}" font-size="12" fill="#333">waits that failed or were refused at once</text>`,
    `<circle cx="${LEFT + PLOT_WIDTH + 61}" cy="${legendTop + 47}" r="3" fill="#e67300" stroke="none"/>`,
    `<text x="${LEFT + PLOT_WIDTH + 80}" y="${legendTop + 51}" font-size="12" fill="#333">longest wait in the interval</text>`,
    `<text x="${LEFT + PLOT_WIDTH / 2}" y="${HEIGHT - 18}" font-size="12" text-anchor="middle" fill="#444">seconds since the callers started</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

function main(): void {
  const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
  const input = args[0] ?? 'soak-dist/observability-soak.json';
  const svgPath = args[1] ?? 'docs/observability-soak.svg';
  const file = JSON.parse(readFileSync(input, 'utf8')) as SoakMetricsFile;
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(svgPath, chart(file));
  console.log(`chart: ${file.samples.length} reads from ${input} drawn in ${svgPath}`);
  if (process.argv.includes('--no-png')) return;
  const pngPath = svgPath.replace(/\.svg$/, '') + '.png';
  try {
    execFileSync('convert', ['-density', '96', svgPath, '-strip', pngPath], { stdio: ['ignore', 'inherit', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    console.error(`convert (ImageMagick) could not write ${pngPath}${stderr ? `: ${stderr}` : ''}`);
    console.error('Install ImageMagick (apt-get install imagemagick), or pass --no-png to keep only the SVG.');
    process.exitCode = 1;
    return;
  }
  console.log(`chart: ${pngPath}`);
}

if (require.main === module) main();
