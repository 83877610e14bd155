import { Type, type Static, type TSchema, type TUnsafe } from 'typebox';

/**
 * A `$ref` to a schema the app registers once (`app.addSchema`, by its `$id`): it becomes one entry
 * of the OpenAPI document's `components.schemas`, one definition for Ajv and for fast-json-stringify,
 * and keeps, for TypeScript, the type of the schema it names.
 */
export function ref<Schema extends TSchema>(schema: Schema, options: Record<string, unknown> = {}): TUnsafe<Static<Schema>> {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id');
  return Type.Unsafe<Static<Schema>>(Type.Ref(id, options));
}
