import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Database } from '../db/client.js';
import { problem, problemResponses, sendProblem } from '../http/problem.js';
import { deleteItem, findItem, insertItem, listItems, updateItem } from './repository.js';
import { ItemCreate, ItemParams, ItemPublic, ItemUpdate, ListQuery } from './schemas.js';

export interface ItemRoutesOptions {
  db: Database;
}

const tags = ['items'];
const notFound = (id: number) => problem(404, 'ITEM_NOT_FOUND', `Item ${id} does not exist`);

export const itemRoutes: FastifyPluginAsyncTypebox<ItemRoutesOptions> = async (app, { db }) => {
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
      const page = await listItems(db, { limit, after });
      const last = page.items.at(-1);
      if (page.hasMore && last) reply.header('link', `</items?after=${last.id}&limit=${limit}>; rel="next"`);
      return page.items;
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
      const item = await insertItem(db, request.body);
      return reply.code(201).header('location', `/items/${item.id}`).send(item);
    },
  );

  app.get(
    '/items/:id',
    { schema: { tags, summary: 'Read an item', params: ItemParams, response: { 200: ItemPublic, ...problemResponses } } },
    async (request, reply) => {
      const item = await findItem(db, request.params.id);
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
      const item = await updateItem(db, request.params.id, request.body);
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
      if (!(await deleteItem(db, request.params.id))) return sendProblem(reply, notFound(request.params.id));
      return reply.code(204).send(null);
    },
  );
};
