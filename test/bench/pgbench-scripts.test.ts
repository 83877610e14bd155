import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_LIMITS, SAME_PAGE_LIMIT } from '../../bench/scenarios.js';
import { parsePgbench, pgbenchArgs, pgbenchScriptText, writePgbenchScripts, type PgbenchScript } from '../../bench/tools/pgbench.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { systemTool } from '../helpers/system-tools.js';

const run = promisify(execFile);
const ROWS = 500;
const pgbenchTool = systemTool('pgbench');

let database: TestDatabase;
let directory: string;
let scripts: Record<PgbenchScript, string>;

beforeAll(async () => {
  database = await createTestDatabase();
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  await sql`INSERT INTO items (name, description) SELECT 'item ' || g, 'description ' || g FROM generate_series(1, ${ROWS}::int) AS g`;
  await sql.end();
  directory = await mkdtemp(path.join(tmpdir(), 'bench-pgbench-scripts-'));
  scripts = await writePgbenchScripts(directory, ROWS, PAGE_LIMITS, SAME_PAGE_LIMIT);
});

afterAll(async () => {
  await database?.drop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

/** pgbench as the bench runs it (prepared statements), for a fixed number of transactions. */
async function pgbench(script: string, extra: string[] = []): Promise<string> {
  const args = pgbenchArgs({ binDir: path.dirname(pgbenchTool.path!), databaseUrl: database.url, clients: 2, threads: 1, durationS: 1, scriptPath: script });
  // -t instead of -T: a count, not a time, on a shared machine.
  const timed = args.indexOf('-T');
  args.splice(timed, 2, ...(extra.includes('-t') ? [] : ['-t', '50']), ...extra);
  const { stdout, stderr } = await run(args[0]!, args.slice(1));
  return `${stdout}${stderr}`;
}

describe.skipIf(pgbenchTool.missing)("pgbench's scripts (the same SQL as the traffic), run by a real pgbench in prepared mode", { timeout: 30_000 }, () => {
  it('draws the page size with a pgbench expression (in prepared mode \\set values arrive as text)', () => {
    expect(pgbenchScriptText('pages', ROWS, PAGE_LIMITS, SAME_PAGE_LIMIT)).toBe(
      `\\set after random(0, ${ROWS - 1})\n\\set pick random(1, 3)\n\\set lim case when :pick = 1 then 10 when :pick = 2 then 50 else 100 end\n` +
        'SELECT id, name, description, created_at, updated_at FROM items WHERE id > :after ORDER BY id LIMIT :lim;\n',
    );
    expect(pgbenchScriptText('by-id', ROWS, PAGE_LIMITS, SAME_PAGE_LIMIT)).toBe(
      `\\set id random(1, ${ROWS})\nSELECT id, name, description, created_at, updated_at FROM items WHERE id = :id;\n`,
    );
  });

  for (const script of ['same-page', 'pages', 'by-id', 'insert'] as const) {
    it(`${script}: every transaction succeeds`, async () => {
      const result = await parsePgbench(await pgbench(scripts[script]));
      expect(result.requests).toBe(100);
      expect(result.statuses).toEqual({ committed: 100 });
    });
  }

  it('pages: the page sizes 10, 50 and 100 all occur, at positions across the table', async () => {
    // The script's own \set lines, with its query swapped for one that records what they drew.
    const drawn = pgbenchScriptText('pages', ROWS, PAGE_LIMITS, SAME_PAGE_LIMIT).replace(/^SELECT .*$/m, 'INSERT INTO drawn VALUES (:after, :lim);');
    const file = path.join(directory, 'drawn.sql');
    await writeFile(file, drawn);
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      await sql`CREATE TABLE drawn (after bigint, lim bigint)`;
      await pgbench(file, ['-t', '200']);
      const limits = await sql<Array<{ lim: string; count: string }>>`SELECT lim, count(*) AS count FROM drawn GROUP BY lim ORDER BY lim`;
      expect(limits.map((row) => Number(row.lim))).toEqual(PAGE_LIMITS);
      for (const row of limits) expect(Number(row.count)).toBeGreaterThan(400 / 5);
      const [range] = await sql<Array<{ low: string; high: string }>>`SELECT min(after) AS low, max(after) AS high FROM drawn`;
      expect(Number(range!.low)).toBeGreaterThanOrEqual(0);
      expect(Number(range!.low)).toBeLessThan(ROWS / 10);
      expect(Number(range!.high)).toBeLessThan(ROWS);
      expect(Number(range!.high)).toBeGreaterThan(ROWS * 0.9);
    } finally {
      await sql.end();
    }
  });
});
