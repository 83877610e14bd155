import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SLOW_TESTS } from '../../vitest.config.js';

/** Modules whose use makes a test slow: they start processes or a browser. */
const SLOW_MODULES = ['node:child_process', 'node:cluster', 'playwright-core'];

const root = path.resolve(import.meta.dirname, '../..');

describe('the split between `npm run test:fast` and the rest of `npm test`', () => {
  it('lists only test files that exist', () => {
    expect(SLOW_TESTS.filter((file) => !existsSync(path.join(root, file)))).toEqual([]);
  });

  it('lists exactly the test files that start processes or a browser', () => {
    const testFiles = readdirSync(path.join(root, 'test'), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.test.ts'))
      .map((file) => path.posix.join('test', file.split(path.sep).join('/')));
    const startingProcesses = testFiles.filter((file) => reachedSlowModule(path.join(root, file)) !== undefined).sort();
    expect(startingProcesses, 'SLOW_TESTS in vitest.config.ts lists these files, and only these').toEqual([...SLOW_TESTS].sort());
  });
});

/** The first module of SLOW_MODULES that `file` loads, directly or through the project's own modules. */
function reachedSlowModule(file: string, seen = new Set<string>()): string | undefined {
  if (seen.has(file)) return undefined;
  seen.add(file);
  for (const specifier of importedModules(readFileSync(file, 'utf8'))) {
    if (SLOW_MODULES.includes(specifier)) return specifier;
    if (!specifier.startsWith('.')) continue;
    const imported = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
    const reached = existsSync(imported) ? reachedSlowModule(imported, seen) : undefined;
    if (reached !== undefined) return reached;
  }
  return undefined;
}

/** Static and dynamic imports that load code at run time (type-only imports load nothing). */
function importedModules(source: string): string[] {
  const statements = /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm;
  return [...source.matchAll(statements)].map((match) => (match[1] ?? match[2])!);
}
