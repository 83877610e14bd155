import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { ServiceError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { problemResponses, RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../http/responses.js';
import { ref } from '../http/schema-ref.js';
import { idempotencyClaim } from './idempotency.js';
import type { ItemPage } from './repository.js';
import { CreateHeaders, DEFAULT_PAGE_SIZE, Item, ItemCreate, ItemParams, ItemUpdate, ListQuery } from './schemas.js';
import type { ItemsService } from './service.js';

export interface ItemRoutesOptions {
  items: ItemsService;
  /** How long a response is remembered for its Idempotency-Key. */
  idempotencyTtlSeconds: number;
}

export class ItemNotFoundError extends ServiceError {
  constructor(id: number) {
    super(404, 'ITEM_NOT_FOUND', `Item ${id} does not exist`);
  }
}

const tags = ['items'];

/** Reads are open to anyone; writes need an API key when the service runs with API_KEYS (see docs.ts). */
const open: { [scheme: string]: string[] }[] = [];
const needsApiKey = [{ apiKey: [] }];

/** Headers on every answer of an item route. */
const headers = { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS };

/** The problems each kind of operation can answer, by code (their statuses follow from the codes). */
const ANY: ErrorCode[] = ['RATE_LIMITED', 'INTERNAL_ERROR', 'OVERLOADED'];
const READ: ErrorCode[] = [...ANY, 'VALIDATION_FAILED', 'DATABASE_UNAVAILABLE'];
const WRITE: ErrorCode[] = [...READ, 'UNAUTHORIZED', 'OUTCOME_UNKNOWN'];
/** A body is read (and refused) before the route's own checks; DELETE reads one too when it is sent. */
const BODY: ErrorCode[] = ['MALFORMED_JSON', 'EMPTY_BODY', 'INVALID_UTF8', 'BAD_REQUEST', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

export const itemRoutes: FastifyPluginAsyncTypebox<ItemRoutesOptions> = async (app, { items, idempotencyTtlSeconds }) => {
  app.get(
    '/items',
    {
      schema: {
        operationId: 'listItems',
        tags,
        summary: 'List items by ascending id, a page at a time',
        description: 'When more items follow, a `Link: <…>; rel="next"` header gives the next page.',
        security: open,
        querystring: ListQuery,
        response: {
          200: Type.Array(ref(Item), {
            description: 'A page of items, by ascending id',
            headers: {
              Link: {
                type: 'string',
                description: 'When more items follow: the next page, `</items?after=<last id>&limit=<limit>>; rel="next"`',
              },
              ...headers,
            },
          }),
          ...problemResponses(READ),
        },
      },
    },
    async (request, reply) => {
      // Ajv fills in the default; the type cannot know that.
      const { limit = DEFAULT_PAGE_SIZE, after = 0 } = request.query;
      const page = await items.list({ after, limit });
      const last = page.items.at(-1);
      if (page.hasMore && last) reply.header('link', `</items?after=${last.id}&limit=${limit}>; rel="next"`);
      return sendJson(reply, serializedOnce(page, () => reply.serialize(page.items) as string));
    },
  );

  app.post(
    '/items',
    {
      schema: {
        operationId: 'createItem',
        tags,
        summary: 'Create an item',
        description:
          'With an `Idempotency-Key`, a retry of the same request returns the original response ' +
          '(marked `Idempotent-Replayed: true`) and creates nothing; the same key with another body is a 422. ' +
          'A 503 (any of its codes) is safe to retry with the same key.',
        security: needsApiKey,
        headers: CreateHeaders,
        body: ref(ItemCreate),
        response: {
          201: ref(Item, {
            description: 'The item created, or the one created by the first request with this Idempotency-Key',
            headers: {
              Location: { type: 'string', description: 'The new item: `/items/{id}`' },
              'Idempotent-Replayed': {
                type: 'string',
                enum: ['true'],
                description: 'Present on a retry answered with the response stored for its Idempotency-Key',
              },
              ...headers,
            },
          }),
          ...problemResponses([...BODY, ...WRITE, 'UNSTORABLE_VALUE', 'IDEMPOTENCY_KEY_REUSED']),
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const idempotency = key === undefined ? undefined : idempotencyClaim(key, request.caller, request.body, idempotencyTtlSeconds);
      const created = await items.create({ ...request.body, idempotency });
      // A stored response is a creation's, a 201 (the types know only the statuses the schema lists).
      if (created.replayed) reply.code(created.status as 201).header('idempotent-replayed', 'true');
      else reply.code(201);
      return reply.header('location', `/items/${created.item.id}`).send(created.item);
    },
  );

  app.get(
    '/items/:id',
    {
      schema: {
        operationId: 'getItem',
        tags,
        summary: 'Read an item',
        security: open,
        params: ItemParams,
        response: { 200: ref(Item, { description: 'The item', headers }), ...problemResponses([...READ, 'ITEM_NOT_FOUND']) },
      },
    },
    async (request) => {
      const item = await items.find(request.params.id);
      if (!item) throw new ItemNotFoundError(request.params.id);
      return item;
    },
  );

  app.patch(
    '/items/:id',
    {
      schema: {
        operationId: 'updateItem',
        tags,
        summary: 'Change some fields of an item',
        security: needsApiKey,
        params: ItemParams,
        body: ref(ItemUpdate),
        response: {
          200: ref(Item, { description: 'The item, changed', headers }),
          ...problemResponses([...BODY, ...WRITE, 'ITEM_NOT_FOUND', 'UNSTORABLE_VALUE']),
        },
      },
    },
    async (request) => {
      const item = await items.update(request.params.id, request.body);
      if (!item) throw new ItemNotFoundError(request.params.id);
      return item;
    },
  );

  app.delete(
    '/items/:id',
    {
      schema: {
        operationId: 'deleteItem',
        tags,
        summary: 'Delete an item',
        security: needsApiKey,
        params: ItemParams,
        response: {
          204: Type.Null({ description: 'Deleted', headers }),
          ...problemResponses([...BODY, ...WRITE, 'ITEM_NOT_FOUND']),
        },
      },
    },
    async (request, reply) => {
      if (!(await items.remove(request.params.id))) throw new ItemNotFoundError(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

/**
 * Requests that asked for the same page at the same time got the same page object from the
 * service: they also share one serialization of it, made by the first to send it.
 */
const serializedPages = new WeakMap<ItemPage, string>();

function serializedOnce(page: ItemPage, serialize: () => string): string {
  let json = serializedPages.get(page);
  if (json === undefined) serializedPages.set(page, (json = serialize()));
  return json;
}

/** Sends a body the route's serializer already made, as is. */
function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}
