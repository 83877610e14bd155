import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { problem, problemResponses, sendProblem } from '../http/problem.js';
import { ItemCreate, ItemParams, ItemPublic, ItemUpdate, ListQuery } from './schemas.js';
import type { ItemsService } from './service.js';

export interface ItemRoutesOptions {
  items: ItemsService;
}

const tags = ['items'];

/** Sends a body the route's serializer already made, as is. */
function sendSerialized(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}
const notFound = (id: number) => problem(404, 'ITEM_NOT_FOUND', `Item ${id} does not exist`);

export const itemRoutes: FastifyPluginAsyncTypebox<ItemRoutesOptions> = async (app, { items }) => {
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
      const { limit, after } = request.query;
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
        body: ItemCreate,
        response: { 201: ItemPublic, ...problemResponses },
      },
    },
    async (request, reply) => {
      const item = await items.create(request.body);
      return reply.code(201).header('location', `/items/${item.id}`).send(item);
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
