import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const NAME = 'nestjs-freedompay-transfer-auth';
let version: string | null | undefined;

/**
 * @internal This package's version: from the nearest package.json above this file that bears its name
 * (the package root above `dist/`, or the repository above a test build). Read once; `undefined` if none.
 */
export function packageVersion(): string | undefined {
  version ??= lookUp();
  return version ?? undefined;
}

function lookUp(): string | null {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // none here: look further up
    }
    if (dirname(dir) === dir) return null;
  }
}
