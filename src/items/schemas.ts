import { Type, type Static } from 'typebox';
import { STORABLE_TEXT_PATTERN } from '../http/validation.js';

/**
 * The items resource's schemas, split by role. Each one drives request validation, the TypeScript
 * types, response serialization and the OpenAPI document.
 */

const Name = Type.String({ minLength: 1, maxLength: 255, pattern: STORABLE_TEXT_PATTERN, examples: ['x'] });
const Description = Type.Union(
  [Type.String({ maxLength: 10_000, pattern: STORABLE_TEXT_PATTERN }), Type.Null()],
  { examples: ['y'] },
);
/** Ids are PostgreSQL bigints; beyond 2^53 they could not be represented exactly in JSON clients. */
const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** RFC 3339 in UTC with milliseconds, as the database's rows already carry it (see db/client.ts). */
const Timestamp = Type.String({ format: 'date-time' });

/*
 * The `$id`s name the shared schemas (app.addSchema): routes refer to them with ref(), and the
 * OpenAPI document lists them once under components.schemas.
 */

export const Item = Type.Object(
  { id: Id, name: Type.String(), description: Type.Union([Type.String(), Type.Null()]), created_at: Timestamp, updated_at: Timestamp },
  {
    $id: 'Item',
    additionalProperties: false,
    description: 'An item, as stored',
    examples: [{ id: 1, name: 'x', description: 'y', created_at: '2026-11-29T01:19:59.554Z', updated_at: '2026-11-29T01:19:59.554Z' }],
  },
);

// `additionalProperties: false` with Ajv's `removeAdditional` drops unknown fields, as Pydantic does.
export const ItemCreate = Type.Object(
  { name: Name, description: Type.Optional(Description) },
  { $id: 'ItemCreate', additionalProperties: false, description: 'A new item', examples: [{ name: 'x', description: 'y' }] },
);

export const ItemUpdate = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Description) },
  {
    $id: 'ItemUpdate',
    additionalProperties: false,
    description: 'The fields to change; the others stay as they are',
    examples: [{ description: null }],
  },
);

/** Registered once with the app (app.addSchema) and referenced by `$ref` from the routes. */
export const itemSchemas = [Item, ItemCreate, ItemUpdate];

export const ItemParams = Type.Object({ id: Id });

export const CreateHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description: 'Any unique string (a UUID) of visible ASCII characters; a retry sends the same one',
    }),
  ),
});

export const DEFAULT_PAGE_SIZE = 100;

export const ListQuery = Type.Object(
  {
    // Optional for clients (OpenAPI), filled in with the default before the handler runs.
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: DEFAULT_PAGE_SIZE, description: 'Page size' })),
    after: Type.Optional(
      Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Return items whose id is greater' }),
    ),
  },
  { additionalProperties: false },
);

export type Item = Static<typeof Item>;
export type ItemCreate = Static<typeof ItemCreate>;
export type CreateHeaders = Static<typeof CreateHeaders>;
export type ItemUpdate = Static<typeof ItemUpdate>;
export type ListQuery = Static<typeof ListQuery>;
