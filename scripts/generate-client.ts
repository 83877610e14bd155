import { writeFile } from 'node:fs/promises';
import { clientTypesText, CLIENT_TYPES_FILE, OPENAPI_FILE } from './contract-files.js';

/** `npm run client:generate`: the typed client's types, from the committed openapi.json. */
await writeFile(CLIENT_TYPES_FILE, await clientTypesText(OPENAPI_FILE));
console.log(`wrote ${CLIENT_TYPES_FILE.pathname}`);
