import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The folder of the README's recipes. */
export const RECIPES_DIR = __dirname;

/** The recipe files: those whose first line names the file (`// app.module.ts`), as the README shows them. */
export function recipeFiles(): string[] {
  return readdirSync(RECIPES_DIR)
    .filter((name) => name.endsWith('.ts') && readFileSync(join(RECIPES_DIR, name), 'utf8').startsWith(`// ${name}\n`))
    .sort();
}
