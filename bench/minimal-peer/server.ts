/**
 * The minimal peer: the items API as a careful engineer writes it in an hour with plain Fastify 5
 * and postgres.js, to measure what fastify-sqlasync's engineering adds over the obvious version.
 * The route schemas validate input and serialize output; postgres.js keeps its defaults (a pool of
 * 10, prepared statements), and runs from this project's node_modules, with its patch (patches/):
 * the comparison is of the code, not of a library defect. node:cluster runs WORKERS workers. No
 * coalescing, no load shedding, no access log, no restarts: nothing beyond the obvious.
 *
 * It reads the project's `items` table (migrated by the project's migrator).
 * Environment: DATABASE_URL (required), HOST (127.0.0.1), PORT (3000), WORKERS (2).
 */
import cluster from 'node:cluster';
import Fastify from 'fastify';
import postgres from 'postgres';

const { DATABASE_URL, HOST = '127.0.0.1', PORT = '3000', WORKERS = '2' } = process.env;

const Item = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    description: { type: ['string', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'name', 'description', 'created_at', 'updated_at'],
} as const;

interface ListQuery {
  limit: number;
  after: number;
}
interface ItemParams {
  id: number;
}
interface ItemBody {
  name: string;
  description?: string | null;
}

async function worker(databaseUrl: string): Promise<void> {
  const sql = postgres(databaseUrl);
  // Errors (5xx) are logged; no line per request.
  const app = Fastify({ logger: { level: 'warn' } });
  app.addHook('onClose', () => sql.end());

  app.get<{ Querystring: ListQuery }>(
    '/items',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, after: { type: 'integer', minimum: 0, default: 0 } },
          additionalProperties: false,
        },
        response: { 200: { type: 'array', items: Item } },
      },
    },
    async (request) => {
      const { limit, after } = request.query;
      return sql`SELECT id, name, description, created_at, updated_at FROM items WHERE id > ${after} ORDER BY id LIMIT ${limit}`;
    },
  );

  app.get<{ Params: ItemParams }>(
    '/items/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] }, response: { 200: Item } } },
    async (request, reply) => {
      const [item] = await sql`SELECT id, name, description, created_at, updated_at FROM items WHERE id = ${request.params.id}`;
      return item ?? reply.code(404).send({ message: 'Item not found' });
    },
  );

  app.post<{ Body: ItemBody }>(
    '/items',
    {
      schema: {
        body: {
          type: 'object',
          properties: { name: { type: 'string', minLength: 1, maxLength: 255 }, description: { type: ['string', 'null'], maxLength: 10000 } },
          required: ['name'],
          additionalProperties: false,
        },
        response: { 201: Item },
      },
    },
    async (request, reply) => {
      const { name, description = null } = request.body;
      const [item] = await sql`INSERT INTO items (name, description) VALUES (${name}, ${description}) RETURNING id, name, description, created_at, updated_at`;
      return reply.code(201).send(item);
    },
  );

  const address = await app.listen({ host: HOST, port: Number(PORT) });
  console.log(`minimal peer worker ${process.pid} listening on ${address}`);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

if (!DATABASE_URL) {
  console.error('DATABASE_URL is required');
  process.exit(1);
} else if (cluster.isPrimary) {
  for (let index = 0; index < Number(WORKERS); index += 1) cluster.fork();
  // The workers stop on SIGTERM; the primary exits once they are gone.
  process.once('SIGTERM', () => {
    for (const child of Object.values(cluster.workers ?? {})) child?.process.kill('SIGTERM');
  });
} else {
  await worker(DATABASE_URL);
}
