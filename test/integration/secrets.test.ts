import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runEntryPoint } from '../helpers/command.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * A password never reaches the terminal or the logs, whichever way the process fails. The URL
 * below is what a user writes with an unencoded `#` in the password: `new URL` (inside
 * postgres.js) throws with the whole input, which used to be printed as it was.
 */

const PASSWORD = 'hunter2#Sekrit';
const MALFORMED_URL = `postgres://app:${PASSWORD}@127.0.0.1:5432/items`;
const EXPECTED_LINE =
  'Invalid configuration: DATABASE_URL is not a valid connection URL (postgres://app:[redacted]@127.0.0.1:5432/items); ' +
  'percent-encode special characters in the password: # as %23, @ as %40, / as %2F, % as %25';

let dataDir: string;
let env: Record<string, string>;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-secrets-'));
  env = { HOST: '127.0.0.1', PORT: String(await freePort()), DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()) };
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function expectNoPassword(output: string): void {
  expect(output).not.toContain('hunter2');
  expect(output).not.toContain('Sekrit');
}

describe('a malformed DATABASE_URL', () => {
  it('stops the service with one line that names the variable and hides the password', async () => {
    const service = new ServiceProcess({ ...env, DATABASE_URL: MALFORMED_URL });
    running.push(service);
    expect((await service.exited).code).toBe(1);
    expectNoPassword(service.output.join('\n'));
    expect(service.output).toEqual([EXPECTED_LINE]);
  });

  it.each(['status', 'migrate', 'rollback'])('stops db:%s the same way', async (command) => {
    const result = await runEntryPoint('src/db/cli.ts', [command], { ...env, DATABASE_URL: MALFORMED_URL });
    expect(result.code).toBe(1);
    expectNoPassword(result.stdout + result.stderr);
    expect(result.stderr.trim()).toBe(EXPECTED_LINE);
  });
});
