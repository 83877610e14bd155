import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

export interface DocsOptions {
  version: string;
}

/**
 * The OpenAPI document, generated from the route schemas, at /openapi.json (as FastAPI serves it),
 * and Swagger UI at /docs, served from the installed package: no CDN, works offline.
 */
export const docs = fastifyPlugin(async function docs(app: FastifyInstance, { version }: DocsOptions) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fastify-sqlasync',
        description: 'Items API on PostgreSQL. Errors are RFC 9457 problem details.',
        version,
      },
      tags: [
        { name: 'items', description: 'The items resource' },
        { name: 'health', description: 'Liveness and readiness probes' },
      ],
    },
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: true },
    // Swagger UI's own content security policy (hashes of its inline scripts), with two changes:
    // its components set inline style attributes, which only 'unsafe-inline' allows (a hash in the
    // list would disable it, and styles cannot run code), and no upgrade to HTTPS, which would
    // break the page on a plain-HTTP address.
    staticCSP: true,
    transformStaticCSP: (header) =>
      header.replace(/style-src [^;]*/, "style-src 'self' 'unsafe-inline'").replace(/\s*upgrade-insecure-requests;?/, ''),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
});
