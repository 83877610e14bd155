import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { ServiceError } from '../errors.js';
import { problemResponses } from '../http/problem.js';
import { idempotencyClaim } from './idempotency.js';
import type { ItemPage } from './repository.js';
import { CreateHeaders, DEFAULT_PAGE_SIZE, ItemCreate, ItemParams, ItemPublic, ItemUpdate, ListQuery } from './schemas.js';
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

export const itemRoutes: FastifyPluginAsyncTypebox<ItemRoutesOptions> = async (app, { items, idempotencyTtlSeconds }) => {
  app.get(
    '/items',
    {
      schema: {
        tags,
        summary: 'List items by ascending id, a page at a time',
        description: 'When more items follow, a `Link: <…>; rel="next"` header gives the next page.',
        querystring: ListQuery,
        response: { 200: Type.Array(ItemPublic), ...problemResponses },
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
        tags,
        summary: 'Create an item',
        description:
          'With an `Idempotency-Key`, a retry of the same request returns the original response ' +
          '(marked `Idempotent-Replayed: true`) and creates nothing; the same key with another body is a 422.',
        headers: CreateHeaders,
        body: ItemCreate,
        response: { 201: ItemPublic, ...problemResponses },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const idempotency = key === undefined ? undefined : idempotencyClaim(key, request.caller, request.body, idempotencyTtlSeconds);
      const created = await items.create({ ...request.body, idempotency });
      if (created.replayed) reply.code(created.status).header('idempotent-replayed', 'true');
      else reply.code(201);
      return reply.header('location', `/items/${created.item.id}`).send(created.item);
    },
  );

  app.get(
    '/items/:id',
    { schema: { tags, summary: 'Read an item', params: ItemParams, response: { 200: ItemPublic, ...problemResponses } } },
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
        tags,
        summary: 'Change some fields of an item',
        params: ItemParams,
        body: ItemUpdate,
        response: { 200: ItemPublic, ...problemResponses },
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
        tags,
        summary: 'Delete an item',
        params: ItemParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...problemResponses },
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
