import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { isAlive } from './processes.js';

/**
 * The headless Chromium that the browser tests drive. `CHROMIUM_PATH` wins when set (a developer's
 * own browser, for debugging). Otherwise it is the one inside the `@sparticuz/chromium`
 * devDependency, with its own NSS libraries and fonts: the same browser on every machine, with
 * nothing to install beyond `npm ci` and nothing downloaded. A system Chromium is never picked up
 * by chance: one browser for everyone keeps a rendering difference from passing on one machine and
 * failing on another, and the bundled one starts at least as fast once unpacked.
 *
 * Fails, never skips: a page that is never tested is a page that silently breaks.
 */
export async function launchChromium(): Promise<Browser> {
  const { executablePath, env } = await chromiumToLaunch();
  // Chromium writes files of its own (`.org.chromium.Chromium.*`) into its temp folder and leaves
  // some behind when a run ends abruptly: give it a folder of its own, removed once it is gone.
  const browserTemp = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-browser-'));
  const browser = await chromium.launch({
    executablePath,
    env: { ...(env ?? inheritedEnvironment()), TMPDIR: browserTemp },
    headless: true,
    // No sandbox as root; no GPU in a container; no traffic of the browser's own to blur what the page requests.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  }).catch(async (error: unknown) => {
    await rm(browserTemp, { recursive: true, force: true });
    throw error;
  });
  browser.on('disconnected', () => void rm(browserTemp, { recursive: true, force: true }));
  return browser;
}

interface ChromiumToLaunch {
  executablePath: string;
  env?: Record<string, string>;
}

async function chromiumToLaunch(): Promise<ChromiumToLaunch> {
  const chosen = process.env['CHROMIUM_PATH'];
  if (chosen !== undefined) {
    if (!existsSync(chosen)) throw new Error(`CHROMIUM_PATH is ${chosen}, which does not exist: unset it to use the bundled Chromium`);
    return { executablePath: chosen };
  }
  const directory = await unpackedBundledChromium();
  return {
    executablePath: path.join(directory, 'chromium'),
    env: {
      ...inheritedEnvironment(),
      // The NSS libraries it links against ship beside it (Debian's slim images have none).
      LD_LIBRARY_PATH: [path.join(directory, 'al2023', 'lib'), process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':'),
      // Its fonts only, so that text measures the same on every machine.
      FONTCONFIG_FILE: path.join(directory, 'fonts.conf'),
    },
  };
}

function inheritedEnvironment(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/**
 * The package's own `executablePath()` unpacks into the temp folder itself under fixed names
 * (`/tmp/chromium`, `/tmp/fonts`), writing the final file in place with no lock: a second test run
 * starting meanwhile launches a half-written binary, a run killed mid-way leaves one behind for
 * good, and another version's leftover is taken as it is. So it unpacks here into a private folder
 * (the package's `inflate`, in a child process whose TMPDIR is that folder), which is then renamed
 * into place in one step: a folder keyed by package version and user is either complete or absent.
 */
async function unpackedBundledChromium(): Promise<string> {
  const packageDirectory = path.join(path.dirname(createRequire(import.meta.url).resolve('@sparticuz/chromium')), '..');
  const { version } = JSON.parse(await readFile(path.join(packageDirectory, 'package.json'), 'utf8')) as { version: string };
  const name = `fastify-sqlasync-chromium-${version}-uid${process.getuid?.() ?? 0}`;
  const target = path.join(tmpdir(), name);
  if (!existsSync(path.join(target, 'chromium'))) {
    await removeAbandonedStaging(name);
    const staging = await mkdtemp(path.join(tmpdir(), `${name}.staging-${process.pid}-`));
    try {
      await inflateInto(staging, path.join(packageDirectory, 'build', 'index.js'), path.join(packageDirectory, 'bin'));
      await writeFile(path.join(staging, 'fonts.conf'), fontconfig(path.join(target, 'fonts')));
      await rename(staging, target);
    } catch (error) {
      // Another run renamed its copy into place first: use that one.
      if (!isCode(error, 'ENOTEMPTY') && !isCode(error, 'EEXIST')) throw error;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  await checkOwnedByUs(target);
  return target;
}

/** chromium.br → chromium, fonts.tar.br → fonts/, al2023.tar.br → al2023/lib/ (no SwiftShader: the tests disable the GPU). */
async function inflateInto(directory: string, packageEntry: string, binDirectory: string): Promise<void> {
  const script = `
    const { inflate } = await import(process.argv[1]);
    for (const archive of ['chromium.br', 'fonts.tar.br', 'al2023.tar.br']) await inflate(process.argv[2] + '/' + archive);
  `;
  await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, pathToFileURL(packageEntry).href, binDirectory], {
    env: { ...process.env, TMPDIR: directory },
    timeout: 120_000,
  });
}

function fontconfig(fontsDirectory: string): string {
  return `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>${fontsDirectory}</dir>
  <cachedir>${fontsDirectory}-cache</cachedir>
</fontconfig>
`;
}

/** Staging folders of runs that were killed while unpacking (about 200 MB each). */
async function removeAbandonedStaging(name: string): Promise<void> {
  for (const entry of await readdir(tmpdir())) {
    const pid = new RegExp(`^${name}\\.staging-(\\d+)-`).exec(entry)?.[1];
    if (pid !== undefined && !isAlive(Number(pid))) await rm(path.join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/** The temp folder is shared: never launch a binary that another user could have put or changed there. */
async function checkOwnedByUs(directory: string): Promise<void> {
  const { uid, mode } = await stat(directory);
  if (uid !== (process.getuid?.() ?? 0) || (mode & 0o022) !== 0) {
    throw new Error(`${directory} belongs to another user or is writable by others: remove it, and the tests unpack Chromium again`);
  }
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
