import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyServerOptions } from 'fastify';

/**
 * Text that PostgreSQL can store: no NUL character, and no unpaired UTF-16 surrogate (which would
 * otherwise be silently replaced when encoded to UTF-8). Valid pairs are single code points here.
 */
export const STORABLE_TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$';

/**
 * Query strings and path parameters arrive as text, so their numbers and booleans are coerced.
 * Bodies are JSON and already typed: `{"name": 123}` is an error, not the string "123" (as in
 * Pydantic). Every error is reported, not just the first, so clients can fix them all at once.
 */
const common: Options = { useDefaults: true, removeAdditional: true, allErrors: true, strict: false };

type ValidatorFactory = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;

/**
 * Fastify's `compilersFactory.buildValidator`: called with the app's shared schemas (app.addSchema),
 * which the route schemas reach by `$ref`, so each validator knows them.
 */
export const buildValidator: ValidatorFactory = (sharedSchemas) => {
  const forText = addFormats.default(new Ajv({ ...common, coerceTypes: 'array' }));
  const forJson = addFormats.default(new Ajv({ ...common, coerceTypes: false }));
  for (const schema of Object.values(sharedSchemas)) {
    forText.addSchema(schema);
    forJson.addSchema(schema);
  }
  return ({ schema, httpPart }) => (httpPart === 'body' ? forJson : forText).compile(schema);
};
