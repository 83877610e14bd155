import { writeFile } from 'node:fs/promises';
import pino from 'pino';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { documentText, OPENAPI_FILE } from './contract-files.js';

/**
 * `npm run openapi`: writes the OpenAPI document the service serves to openapi.json. The app is
 * built in this process and asked for /openapi.json; it never listens, and never reaches its
 * database (postgres.js connects on the first query, and there is none).
 */
const NO_DATABASE = 'postgres://openapi@127.0.0.1:1/none';

const app = await buildApp({ ...loadConfig({ DATABASE_URL: NO_DATABASE }), databaseUrl: NO_DATABASE }, { logger: pino({ level: 'silent' }) });
try {
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  if (response.statusCode !== 200) throw new Error(`GET /openapi.json answered ${response.statusCode}: ${response.body}`);
  await writeFile(OPENAPI_FILE, documentText(response.json()));
  console.log(`wrote ${OPENAPI_FILE.pathname}`);
} finally {
  await app.close();
}
