import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The Debian tools a few tests drive for real. `npm test` must pass on a machine with nothing but
 * Node, so where a tool is missing its tests are skipped, with one line saying which package brings
 * it. CI installs them all and sets REQUIRE_SYSTEM_TOOLS=1: there a missing tool fails the run, so
 * a test never goes quietly unrun where it matters.
 */
export interface SystemTool {
  /** The executable's path, when installed. */
  readonly path: string | undefined;
  /** For `describe.skipIf(tool.missing)`. */
  readonly missing: boolean;
}

const TOOLS = {
  'redis-server': { debianPackage: 'redis-server', folders: [] },
  wrk: { debianPackage: 'wrk', folders: [] },
  pgbench: { debianPackage: 'postgresql-15', folders: ['/usr/lib/postgresql/15/bin'] },
  psql: { debianPackage: 'postgresql-15', folders: ['/usr/lib/postgresql/15/bin'] },
} as const;

export type SystemToolName = keyof typeof TOOLS;

export function systemTool(name: SystemToolName): SystemTool {
  const { debianPackage, folders } = TOOLS[name];
  const searched = [...folders, ...(process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean)];
  const found = searched.map((folder) => path.join(folder, name)).find((candidate) => existsSync(candidate));
  if (found) return { path: found, missing: false };
  const hint = `${name} is not installed (apt-get install -y ${debianPackage})`;
  if (process.env['REQUIRE_SYSTEM_TOOLS'] === '1') throw new Error(`${hint}, and REQUIRE_SYSTEM_TOOLS=1 asks for every test to run`);
  process.stderr.write(`skipping the tests that drive ${name}: ${hint}\n`);
  return { path: undefined, missing: true };
}
