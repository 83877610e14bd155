import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { formatError } from '../redact.js';
import { prepareDatabase } from './prepare.js';

/**
 * `npm run db:seed -- 100000`: adds N realistic items, for trying pagination and the bench. Uses
 * DATABASE_URL or the embedded database (also while `npm start` holds it). One INSERT … SELECT
 * over generate_series: the rows are made inside PostgreSQL, in one statement and one commit.
 */

const MAX_COUNT = 10_000_000;
const USAGE = `usage: npm run db:seed -- <count>      (1 to ${MAX_COUNT.toLocaleString('en')} items; or: node dist/db/seed.js <count>)`;

/** Names such as "Ergonomic walnut desk" and a description of one to three sentences, one in ten without. */
const SEED_ITEMS = `
  WITH words AS (
    SELECT
      ARRAY['Sturdy', 'Compact', 'Vintage', 'Handmade', 'Lightweight', 'Recycled', 'Foldable', 'Wireless',
            'Ergonomic', 'Waterproof', 'Classic', 'Modern', 'Portable', 'Minimal'] AS adjectives,
      ARRAY['oak', 'steel', 'linen', 'ceramic', 'bamboo', 'leather', 'glass', 'wool', 'copper', 'walnut', 'cotton'] AS materials,
      ARRAY['chair', 'lamp', 'desk', 'kettle', 'backpack', 'notebook', 'speaker', 'blanket', 'mug', 'shelf',
            'clock', 'planter', 'stool', 'tray', 'basket'] AS nouns
  ),
  picked AS (
    SELECT
      i,
      adjectives[1 + floor(random() * array_length(adjectives, 1))::int] AS adjective,
      materials[1 + floor(random() * array_length(materials, 1))::int] AS material,
      nouns[1 + floor(random() * array_length(nouns, 1))::int] AS noun
    FROM words, generate_series(1, $1::int) AS i
  )
  INSERT INTO items (name, description)
  SELECT
    adjective || ' ' || material || ' ' || noun,
    CASE WHEN i % 10 = 0 THEN NULL
      ELSE 'A ' || lower(adjective) || ' ' || noun || ' made of ' || material || '.'
        || CASE WHEN random() < 0.5 THEN ' Ships in ' || (1 + floor(random() * 5))::int || ' working days.' ELSE '' END
        || CASE WHEN random() < 0.3 THEN ' Reference ' || upper(substr(md5(i::text), 1, 8)) || '.' ELSE '' END
    END
  FROM picked
  ORDER BY i`;

async function main(): Promise<void> {
  const { positionals } = parseArgs({ allowPositionals: true });
  const count = Number(positionals[0]);
  if (positionals.length !== 1 || !Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw new ConfigError(USAGE);

  const config = loadConfig();
  // Logs to stderr, the result to stdout (as the migration commands do).
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, fd: 2 });
  const database = await prepareDatabase(config, logger, { shareRunningServer: true });
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    const started = performance.now();
    await sql.unsafe(SEED_ITEMS, [count]).catch((error: { code?: string }) => {
      if (error.code === '42P01') throw new ConfigError('The items table does not exist: run `npm run db:migrate` first');
      throw error;
    });
    const seconds = Math.round(performance.now() - started) / 1000;
    const [{ total }] = await sql<[{ total: number }]>`SELECT count(*)::int AS total FROM items`;
    console.log(`inserted ${count} items in ${seconds} s (${total} in the table)`);
  } finally {
    await sql.end({ timeout: 5 });
    await database.stop();
  }
}

main().catch((error: unknown) => {
  console.error(formatError(error));
  process.exit(1);
});
