import { existsSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from '../processes.js';

export interface Tools {
  /** Whether wrk and hey drive the HTTP runs; autocannon stands in for a missing one. */
  wrk: boolean;
  hey: boolean;
  pgbench: boolean;
  versions: Record<string, string>;
}

async function onPath(program: string): Promise<boolean> {
  return (await runCommand('sh', ['-c', `command -v ${program}`], { allowFailure: true })).code === 0;
}

/** Debian's package version, since neither wrk nor hey prints a plain version. */
async function debianVersion(pkg: string): Promise<string | undefined> {
  const result = await runCommand('dpkg-query', ['-W', '-f', '${Version}', pkg], { allowFailure: true });
  return result.code === 0 && result.stdout ? result.stdout.trim() : undefined;
}

export async function detectTools(pgBin: string, forceAutocannon: boolean): Promise<Tools> {
  const versions: Record<string, string> = {};
  const wrk = !forceAutocannon && (await onPath('wrk'));
  const hey = !forceAutocannon && (await onPath('hey'));
  if (wrk) versions['wrk'] = (await debianVersion('wrk')) ?? 'installed';
  if (hey) versions['hey'] = (await debianVersion('hey')) ?? 'installed';
  if (!wrk || !hey) {
    const pkg = JSON.parse((await runCommand(process.execPath, ['-p', 'JSON.stringify(require("autocannon/package.json").version)'])).stdout) as string;
    versions['autocannon'] = pkg;
  }
  const pgbenchPath = path.join(pgBin, 'pgbench');
  const pgbench = existsSync(pgbenchPath);
  if (pgbench) versions['pgbench'] = (await runCommand(pgbenchPath, ['--version'])).stdout.trim();
  return { wrk, hey, pgbench, versions };
}
