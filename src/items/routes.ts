import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { problem, problemResponses, sendProblem } from '../http/problem.js';
import { CreateHeaders, DEFAULT_PAGE_SIZE, ItemCreate, ItemParams, ItemPublic, ItemUpdate, ListQuery } from './schemas.js';
import type { ItemsService } from './service.js';

export interface ItemRoutesOptions {
  items: ItemsService;
  /** How long a response is remembered for its Idempotency-Key. */
  idempotencyTtlSeconds: number;
}

const tags = ['items'];

/** The request an idempotency key stands for: the validated body (unknown fields already dropped). */
function requestHash(body: ItemCreate): string {
  return createHash('sha256')
    .update(JSON.stringify([body.name, body.description ?? null]))
    .digest('hex');
}

/** Sends a body the route's serializer already made, as is. */
function sendSerialized(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}
const notFound = (id: number) => problem(404, 'ITEM_NOT_FOUND', `Item ${id} does not exist`);

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
      const { limit = DEFAULT_PAGE_SIZE, after } = request.query;
      const page = await items.list({ limit, after });
      const last = page.items.at(-1);
      if (page.hasMore && last) reply.header('link', `</items?after=${last.id}&limit=${limit}>; rel="next"`);
      // Requests that shared this page also share its serialization (with the route's schema).
      page.body ??= reply.serialize(page.items) as string;
      return sendSerialized(reply, page.body);
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
      const idempotency = key === undefined ? undefined : { key, requestHash: requestHash(request.body), ttlSeconds: idempotencyTtlSeconds };
      const created = await items.create({ ...request.body, idempotency });
      if (created.replayed) reply.code(created.status).header('idempotent-replayed', 'true');
      else reply.code(201);
      return reply.header('location', `/items/${created.item.id}`).send(created.item);
    },
  );

  app.get(
    '/items/:id',
    { schema: { tags, summary: 'Read an item', params: ItemParams, response: { 200: ItemPublic, ...problemResponses } } },
    async (request, reply) => {
      const item = await items.find(request.params.id);
      return item ?? sendProblem(reply, notFound(request.params.id));
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
    async (request, reply) => {
      const item = await items.update(request.params.id, request.body);
      return item ?? sendProblem(reply, notFound(request.params.id));
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
      if (!(await items.remove(request.params.id))) return sendProblem(reply, notFound(request.params.id));
      return reply.code(204).send(null);
    },
  );
};
