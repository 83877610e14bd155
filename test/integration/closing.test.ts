import { Agent, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * What a request gets when it arrives while the app closes (app.close(), after the drain): on a
 * keep-alive connection that was busy when the close began, so that the close could not shut it.
 */

let database: TestDatabase;
const agents: Agent[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterEach(() => {
  for (const agent of agents.splice(0)) agent.destroy();
});

afterAll(async () => {
  await database?.drop();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The request went out on a connection that an earlier request had opened. */
  reusedSocket: boolean;
}

/** A request over real HTTP through `agent`; with `hold`, the body's end waits for it. */
function send(agent: Agent, url: string, { method = 'GET', body, hold }: { method?: string; body?: string; hold?: Promise<void> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const outgoing = request(url, { agent, method, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: text, reusedSocket: outgoing.reusedSocket }));
    });
    outgoing.on('error', reject);
    if (body === undefined) outgoing.end();
    else if (hold === undefined) outgoing.end(body);
    else {
      outgoing.write(body.slice(0, 1));
      void hold.then(() => outgoing.end(body.slice(1)));
    }
  });
}

/**
 * Opens one keep-alive connection per path, each busy with a creation whose body is held back,
 * closes the app, lets the creations finish, then sends each path's request on its connection.
 */
async function requestsWhileClosing(app: FastifyInstance, paths: string[]): Promise<{ busy: Answer[]; late: Answer[] }> {
  let closeBegun!: () => void;
  const closing = new Promise<void>((resolve) => (closeBegun = resolve));
  // Runs after the app's own preClose hooks (registered first).
  app.addHook('preClose', async () => closeBegun());
  let creationsArrived = 0;
  app.server.on('request', (incoming: IncomingMessage) => {
    if (incoming.method === 'POST') creationsArrived++;
  });
  let release!: () => void;
  const hold = new Promise<void>((resolve) => (release = resolve));
  const connections = paths.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  agents.push(...connections);
  let creations: Promise<Answer>[] = [];
  let closed: Promise<undefined> | undefined;
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const baseUrl = `http://127.0.0.1:${port}`;
    // Each connection is open, then busy, before the close begins.
    await Promise.all(connections.map((agent) => send(agent, `${baseUrl}/healthz`)));
    creations = connections.map((agent, index) => send(agent, `${baseUrl}/items`, { method: 'POST', body: JSON.stringify({ name: `busy ${index}` }), hold }));
    await expect.poll(() => creationsArrived).toBe(paths.length);

    closed = app.close();
    await closing;
    release();
    const busy = await Promise.all(creations);
    const late = await Promise.all(connections.map((agent, index) => send(agent, `${baseUrl}${paths[index]}`)));
    return { busy, late };
  } finally {
    // Whatever failed, nothing is left open: no held request, no connection, no app.
    release();
    for (const agent of connections) agent.destroy();
    await Promise.allSettled(creations);
    await (closed ?? app.close());
  }
}

describe('a request that arrives while the app closes', () => {
  it('gets a 503 problem with a code and Retry-After, and the connection is closed; liveness and the scrape still answer, readiness says not ready', async () => {
    const app = await buildTestApp(database.url);
    const { busy, late } = await requestsWhileClosing(app, ['/items?limit=1', '/readyz', '/healthz', '/metrics']);

    // The requests under way when the close began were served.
    expect(busy.map((answer) => answer.status)).toEqual([201, 201, 201, 201]);
    // Each late request went out on its kept-alive connection: none was shut before it.
    expect(late.map((answer) => answer.reusedSocket)).toEqual([true, true, true, true]);

    const [items, readiness, liveness, scrape] = late as [Answer, Answer, Answer, Answer];
    expect(items.status).toBe(503);
    expect(items.headers).toMatchObject({ 'content-type': 'application/problem+json; charset=utf-8', 'retry-after': '1', connection: 'close' });
    expect(JSON.parse(items.body)).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'The service is shutting down; retry shortly',
      code: 'OVERLOADED',
    });

    expect(readiness.status).toBe(503);
    expect(readiness.headers).toMatchObject({ 'content-type': 'application/problem+json; charset=utf-8', 'retry-after': '1', connection: 'close' });
    expect(JSON.parse(readiness.body)).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'The service is shutting down',
      code: 'NOT_READY',
    });

    expect({ status: liveness.status, connection: liveness.headers.connection, body: JSON.parse(liveness.body) as unknown }).toEqual({
      status: 200,
      connection: 'close',
      body: { status: 'ok' },
    });
    expect({ status: scrape.status, connection: scrape.headers.connection }).toEqual({ status: 200, connection: 'close' });
    expect(scrape.body).toContain('http_requests_total');
  });
});
