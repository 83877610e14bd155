import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Unpacking the bundled browser (about 200 MB) twice at once takes a while on a 2-core machine.
const TIMEOUT = 120_000;

const { version } = JSON.parse(await readFile('node_modules/@sparticuz/chromium/package.json', 'utf8')) as { version: string };
const unpackedName = `fastify-sqlasync-chromium-${version}-uid${process.getuid?.() ?? 0}`;

const temporaryFolders: string[] = [];

afterAll(async () => {
  for (const folder of temporaryFolders) await rm(folder, { recursive: true, force: true });
});

/** A temp folder of the test's own, which the launched process takes as its system temp folder. */
async function emptyTempFolder(): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), 'chromium-test-'));
  temporaryFolders.push(folder);
  return folder;
}

/** test/fixtures/launch-chromium.ts in a process of its own, as a separate test run would launch it. */
async function launchInProcess(tempFolder: string, env: Record<string, string> = {}) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/fixtures/launch-chromium.ts'], {
    env: { ...process.env, CHROMIUM_PATH: undefined, TMPDIR: tempFolder, ...env },
    timeout: TIMEOUT,
  });
  return JSON.parse(stdout) as { version: string; text: string };
}

/** What a folder holds besides the compile cache of tsx (which runs the fixture). */
async function entriesBesidesTsx(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((entry) => !entry.startsWith('tsx-'));
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

describe('the bundled Chromium, started by two test runs at once on an empty temp folder', { timeout: TIMEOUT }, () => {
  let tempFolder: string;
  let launched: PromiseSettledResult<{ version: string; text: string }>[];
  let abandoned: string;
  let inProgress: string;

  beforeAll(async () => {
    tempFolder = await emptyTempFolder();
    // What a run killed while unpacking leaves behind, and what a live one is still writing.
    abandoned = path.join(tempFolder, `${unpackedName}.staging-${await deadPid()}-abcdef`);
    inProgress = path.join(tempFolder, `${unpackedName}.staging-${process.pid}-abcdef`);
    for (const folder of [abandoned, inProgress]) {
      await mkdir(folder);
      await writeFile(path.join(folder, 'chromium'), 'half-written');
    }
    launched = await Promise.allSettled([launchInProcess(tempFolder), launchInProcess(tempFolder)]);
  }, TIMEOUT);

  it('is launched by both, and renders a page', () => {
    expect(launched).toEqual([
      { status: 'fulfilled', value: { version: expect.stringMatching(/^\d+\./), text: 'rendered' } },
      { status: 'fulfilled', value: { version: expect.stringMatching(/^\d+\./), text: 'rendered' } },
    ]);
  });

  it('is unpacked once, into a folder of its version and user that only the user can change', async () => {
    // Nothing else either: no staging folder, none of the package's own fixed names (chromium, fonts, …).
    expect((await entriesBesidesTsx(tempFolder)).filter((entry) => entry !== path.basename(inProgress))).toEqual([unpackedName]);
    const unpacked = path.join(tempFolder, unpackedName);
    expect((await stat(unpacked)).mode & 0o777).toBe(0o700);
    expect((await readdir(unpacked)).sort()).toEqual(expect.arrayContaining(['al2023', 'chromium', 'fonts', 'fonts.conf']));
  });

  it("removes a killed run's half-unpacked folder and leaves a live run's alone", async () => {
    await expect(stat(abandoned)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readFile(path.join(inProgress, 'chromium'), 'utf8')).resolves.toBe('half-written');
  });
});

describe('launching the tests’ Chromium', { timeout: TIMEOUT }, () => {
  it('refuses an unpacked folder that other users can change, since anyone could have replaced the binary', async () => {
    const tempFolder = await emptyTempFolder();
    const planted = path.join(tempFolder, unpackedName);
    await mkdir(planted);
    await writeFile(path.join(planted, 'chromium'), '#!/bin/sh\necho planted\n', { mode: 0o755 });
    await chmod(planted, 0o777);

    await expect(launchInProcess(tempFolder)).rejects.toMatchObject({
      stderr: expect.stringContaining(`${planted} belongs to another user or is writable by others`),
    });
  });

  it('takes CHROMIUM_PATH when it is set, and names it when it does not exist', async () => {
    const tempFolder = await emptyTempFolder();
    await expect(launchInProcess(tempFolder, { CHROMIUM_PATH: '/nonexistent/chromium' })).rejects.toMatchObject({
      stderr: expect.stringContaining('CHROMIUM_PATH is /nonexistent/chromium, which does not exist'),
    });
    expect(await entriesBesidesTsx(tempFolder)).toEqual([]);
  });
});
