import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../processes.js';

/** The compiled code's folder inside a snapshot (dist/ in the repository). */
export const SNAPSHOT_OUT_DIR = 'build';

/**
 * Builds our server into a folder of the bench's own (`npm run build -- --outDir …`), beside copies
 * of `migrations/` and `package.json`, and returns that folder. The run then measures one snapshot
 * of the code: a rebuild of `dist/` by someone else during a long run cannot reach it (the
 * supervisor would load the new `dist/` into any worker it replaces). Its command line does not
 * contain `dist/server.js` either, so a `pkill -f dist/server.js` aimed at a development server
 * does not stop the bench's (that happened while this toolkit was written). The folder sits inside
 * the repository so that Node still resolves packages from its `node_modules`.
 */
export async function buildSnapshot(repoRoot: string, directory: string): Promise<string> {
  await mkdir(directory, { recursive: true });
  await runCommand('npm', ['run', 'build', '--', '--outDir', path.join(directory, SNAPSHOT_OUT_DIR)], { cwd: repoRoot });
  await cp(path.join(repoRoot, 'migrations'), path.join(directory, 'migrations'), { recursive: true });
  // "type": "module" and the version the app reports come from package.json.
  await cp(path.join(repoRoot, 'package.json'), path.join(directory, 'package.json'));
  return directory;
}
