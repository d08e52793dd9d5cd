import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { BENCHMARKS_HEADER, BENCHMARKS_PATH } from '../../bench/support/report';
import { RECIPES_DIR, recipeFiles } from '../recipes/recipe-files';

/**
 * The README and docs/ stay true to the repository: the README is small and links to docs/ for the long
 * parts, every relative link resolves, no table is kept twice, the code blocks that name a file are that
 * file of test/recipes/ (compiled and run there), the options table lists the options the code has, and
 * each generated doc comes from its generator (docs/fault-matrix.md: test/reliability/fault-matrix.spec.ts).
 */
const ROOT = join(__dirname, '..', '..');
const README = join(ROOT, 'README.md');
const DOCS = join(ROOT, 'docs');
const RECIPES = RECIPES_DIR;
const README_MAX_BYTES = 20_480;

const read = (file: string): string => readFileSync(file, 'utf8');
const docFiles = (): string[] => [
  README,
  ...readdirSync(DOCS)
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(DOCS, name)),
];
const name = (file: string): string => relative(ROOT, file);

/** The text outside fenced code blocks, with inline code blanked: where links and headings live. */
function prose(markdown: string): string {
  return markdown
    .replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '')
    .replace(/`[^`\n]*`/g, (code) => (code.includes('](') ? '``' : code));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** The ```ts blocks of a markdown file. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map(([, body]) => body as string);
}

/** The data rows of the markdown tables of a file (header and separator rows left out). */
function tableRows(markdown: string): string[] {
  const rows: string[] = [];
  let inTable = 0;
  for (const line of prose(markdown).split('\n')) {
    inTable = line.startsWith('|') ? inTable + 1 : 0;
    if (inTable > 2) rows.push(line);
  }
  return rows;
}

describe('README.md', () => {
  const readme = read(README);

  it(`stays under ${README_MAX_BYTES} bytes`, () => {
    expect(Buffer.byteLength(readme)).toBeLessThan(README_MAX_BYTES);
  });

  it('shows the two commands (npm install, npm start) and the test command (npm test)', () => {
    const section = /^## Try it: two commands\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    const block = /^```sh\n([\s\S]*?)^```$/m.exec(section)?.[1] ?? '';
    const commands = block
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter((line) => line !== '');
    expect(commands).toEqual(['npm install', 'npm start']);
    expect(section).toContain('`npm test`');
  });

  it('lists exactly the options TransferAuthModuleOptions has', () => {
    const file = join(ROOT, 'lib', 'interfaces', 'transfer-auth-module-options.interface.ts');
    const source = ts.createSourceFile(file, read(file), ts.ScriptTarget.Latest);
    const options = source.statements
      .filter(ts.isInterfaceDeclaration)
      .find((node) => node.name.text === 'TransferAuthModuleOptions');
    const inCode = (options?.members ?? []).map((member) => member.name?.getText(source)).filter(Boolean);
    const section = /^## Options\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    const inReadme = [...section.matchAll(/^\| `(\w+)` \|/gm)].map(([, option]) => option);
    expect(inCode.length).toBeGreaterThan(5);
    expect(inReadme).toEqual(inCode);
  });

  it('keeps no table that lives in docs/', () => {
    const lines = new Set(readme.split('\n'));
    for (const file of docFiles().slice(1)) {
      const rows = tableRows(read(file)).filter((row) => lines.has(row));
      expect({ file: name(file), rows }).toEqual({ file: name(file), rows: [] });
    }
  });
});

describe('README.md and docs/*.md', () => {
  it.each(docFiles().map((file) => [name(file), file]))('every relative link in %s resolves', (_, file) => {
    const text = read(file as string);
    const broken: string[] = [];
    const links = [...prose(text).matchAll(/\]\(([^)\s]+)\)/g)].map(([, target]) => target as string);
    for (const link of links) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
      const [path = '', anchor] = link.split('#');
      const target = path === '' ? (file as string) : resolve(dirname(file as string), decodeURIComponent(path));
      if (!target.startsWith(ROOT) || !existsSync(target)) {
        broken.push(`${link} (no such file)`);
        continue;
      }
      if (anchor !== undefined && !(statSync(target).isFile() && anchors(read(target)).has(anchor))) {
        broken.push(`${link} (no such heading)`);
      }
    }
    if (file === README) expect(links.length).toBeGreaterThan(5); // the link pattern still finds links
    expect(broken).toEqual([]);
  });

  it('show the recipes of test/recipes/ verbatim, and every code block that names a file is that file', () => {
    const shown = docFiles().flatMap((file) => tsBlocks(read(file)).map((block) => ({ doc: name(file), block })));
    const named = shown.filter(({ block }) => /^\/\/ [\w.-]+\.ts\n/.test(block));
    for (const { doc, block } of named) {
      const file = join(RECIPES, (/^\/\/ ([\w.-]+\.ts)\n/.exec(block) as RegExpExecArray)[1] as string);
      expect({ doc, file: name(file), block }).toEqual({
        doc,
        file: name(file),
        block: existsSync(file) ? read(file) : '(no such recipe file)',
      });
    }
    for (const recipe of recipeFiles()) {
      expect({ recipe, shown: named.some(({ block }) => block === read(join(RECIPES, recipe))) }).toEqual({
        recipe,
        shown: true,
      });
    }
    // The README itself carries the quick start, the ConfigModule recipe and the testing recipe.
    const inReadme = named.filter(({ doc }) => doc === 'README.md').map(({ block }) => block.split('\n')[0]);
    expect(inReadme).toEqual(
      expect.arrayContaining(
        ['payments.module.ts', 'freedompay.config.ts', 'app.module.ts', 'main.ts', 'payments.module.spec.ts'].map(
          (file) => `// ${file}`,
        ),
      ),
    );
  });
});

describe('docs/', () => {
  it('design.md names every room of lib/token-lifecycle/ and the TransferTokenStore seam', () => {
    const design = read(join(DOCS, 'design.md'));
    const rooms = readdirSync(join(ROOT, 'lib', 'token-lifecycle')).filter((file) => file.endsWith('.ts'));
    expect(rooms).toEqual(expect.arrayContaining(['token-lifecycle.ts', 'renewal.ts', 'failure-policy.ts']));
    const missing = rooms.filter((room) => !design.includes(`(../lib/token-lifecycle/${room})`));
    expect(missing).toEqual([]);
    expect(design).toContain('(../lib/token-store/transfer-token-store.interface.ts)');
  });

  it(`${BENCHMARKS_PATH} is what npm run bench writes`, () => {
    expect(read(join(ROOT, BENCHMARKS_PATH)).startsWith(BENCHMARKS_HEADER)).toBe(true);
  });

  it('holds the fault matrix (checked against the tests that run it by fault-matrix.spec.ts)', () => {
    expect(read(join(DOCS, 'fault-matrix.md'))).toMatch(/^# Fault matrix\n/);
    expect(existsSync(join(ROOT, 'test', 'reliability', 'FAULT-MATRIX.md'))).toBe(false);
    expect(existsSync(join(ROOT, 'BENCHMARKS.md'))).toBe(false);
  });
});
