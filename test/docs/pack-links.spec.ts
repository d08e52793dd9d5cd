import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

/**
 * The README and docs/ as npm users get them: every relative link (and image) in a shipped markdown file
 * resolves to a file of the tarball, or to a folder holding some. Links to what the tarball leaves out
 * (test/, sample-app/, soak/, bench/) are written as code spans instead.
 *
 * The file list is `npm pack --dry-run --json --ignore-scripts`, taken once per run of this file.
 * `--ignore-scripts` skips `prepack` (a full build that empties dist/ while it runs, under other tests'
 * feet); the list then holds the dist/ of the working tree as it is, so links into dist/ are refused
 * outright (none should exist: the docs link sources, which ship in lib/).
 */
const ROOT = join(__dirname, '..', '..');

interface PackResult {
  files: { path: string }[];
}

function shippedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const [result] = JSON.parse(out) as PackResult[];
  return (result?.files ?? []).map((file) => file.path).sort();
}

/**
 * Relative link targets in the prose of a markdown file (fenced code and code spans left out): inline
 * links, reference definitions and HTML `href`/`src`.
 */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '``');
  const inline = [...prose.matchAll(/\]\(([^)\s]+)\)/g)];
  const references = [...prose.matchAll(/^ {0,3}\[[^\]\n]+\]:\s*<?([^\s>]+)>?/gm)]; // [name]: target
  const html = [...prose.matchAll(/\b(?:href|src)\s*=\s*["']([^"']+)["']/gi)];
  return [...inline, ...references, ...html]
    .map(([, target]) => target as string)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'));
}

/** The links of `doc` (a path in the tarball) whose target the tarball does not hold. */
function brokenLinks(doc: string, markdown: string, shipped: readonly string[]): string[] {
  const files = new Set(shipped);
  return relativeLinks(markdown).filter((link) => {
    const path = decodeURIComponent(link.split('#')[0] as string);
    const target = posix.normalize(posix.join(posix.dirname(doc), path)).replace(/\/$/, '');
    if (target.startsWith('..') || target === 'dist' || target.startsWith('dist/')) return true;
    return !files.has(target) && !shipped.some((file) => file.startsWith(`${target}/`));
  });
}

describe('links in the shipped README and docs', () => {
  let shipped: string[] = [];
  beforeAll(() => {
    shipped = shippedFiles();
  }, 60_000);

  it('the tarball holds the README, the docs and the sources the docs link to', () => {
    expect(shipped).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'docs/fleet.md', 'lib/index.ts']));
    expect(shipped.filter((file) => /^(test|sample-app|soak|bench|scripts)\//.test(file))).toEqual([]);
  });

  it('every relative link of every shipped markdown file resolves to a shipped file', () => {
    const docs = shipped.filter((file) => file.endsWith('.md') && !/^(lib|dist|node_modules)\//.test(file));
    expect(docs).toEqual(expect.arrayContaining(['README.md', 'docs/fleet.md', 'docs/probes.md']));
    const broken = docs.flatMap((doc) =>
      brokenLinks(doc, readFileSync(join(ROOT, doc), 'utf8'), shipped).map((link) => `${doc}: ${link}`),
    );
    expect(broken).toEqual([]);
  });

  it('would catch a link to an unshipped file, a folder it leaves out, dist/, or outside the package', () => {
    const text =
      '[a](../test/recipes/main.ts) [b](../sample-app) [c](../dist/index.js) [d](../../x.md) ' +
      '[ok](fleet.md#encryptionkey-generate-store-rotate) [ok](../lib/redis) [ok](observability-soak.png) `[code](../test/x.ts)`';
    expect(brokenLinks('docs/x.md', text, shipped)).toEqual([
      '../test/recipes/main.ts',
      '../sample-app',
      '../dist/index.js',
      '../../x.md',
    ]);
  });

  it('also reads reference definitions and HTML href/src', () => {
    const text =
      'See [the spec][s] and <a href="../test/a.ts">a</a> <img src="../bench/x.png">.\n\n' +
      '[s]: ../test/recipes/probes.spec.ts\n[ok]: fleet.md\n';
    expect(brokenLinks('docs/x.md', text, shipped)).toEqual([
      '../test/recipes/probes.spec.ts',
      '../test/a.ts',
      '../bench/x.png',
    ]);
  });
});
