import fastifySwagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

export interface DocsOptions {
  version: string;
  /** The package's license, an SPDX identifier. */
  license: string;
}

/** The security scheme of the writes; `security` on each route says which operations need it. */
export const API_KEY_SCHEME = 'apiKey';

const DESCRIPTION = `Items API on PostgreSQL.

Every error is an RFC 9457 problem (\`application/problem+json\`) whose \`code\` is one of a closed list
(the \`Problem\` schema); a path that does not exist is a 404 \`NOT_FOUND\`, a method a path does not
take is a 405 \`METHOD_NOT_ALLOWED\` with \`Allow\`. Every response carries \`x-request-id\`, the id its
log lines carry (a short, plain \`x-request-id\` sent with the request is kept).`;

/**
 * The OpenAPI document, generated from the route schemas, at /openapi.json (as FastAPI serves it),
 * and Swagger UI at /docs, served from the installed package: no CDN, works offline.
 */
export const docs = fastifyPlugin(async function docs(app: FastifyInstance, { version, license }: DocsOptions) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'fastify-sqlasync', description: DESCRIPTION, version, license: { name: license, identifier: license } },
      // Relative: the document holds wherever the service is reached (behind a proxy too).
      servers: [{ url: '/', description: 'This service' }],
      tags: [
        { name: 'items', description: 'The items resource' },
        { name: 'health', description: 'Liveness and readiness probes' },
      ],
      components: {
        securitySchemes: {
          [API_KEY_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An API key, as `Authorization: Bearer <key>`. Applies only when the service runs with `API_KEYS` set ' +
              '(then writes without one of its keys are a 401); otherwise writes need none and the header is ignored.',
          },
        },
      },
    },
    // Shared schemas (app.addSchema) keep their $id as their name under components.schemas.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${index}`),
    },
    transformObject: withResponseExamples,
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: true, persistAuthorization: false },
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

type JsonObject = Record<string, unknown>;
type SwaggerDocumentObject = Parameters<NonNullable<FastifyDynamicSwaggerOptions['transformObject']>>[0];

/**
 * A response whose schema is a `$ref` to a component gets that component's first example as its
 * own (and a list of them, one): @fastify/swagger drops the keywords beside a `$ref`, so the route
 * schema cannot carry it, and the component's example is the one a reader should see.
 */
function withResponseExamples(document: SwaggerDocumentObject) {
  if (!('openapiObject' in document)) return document.swaggerObject;
  const openapi = document.openapiObject;
  const schemas = (openapi.components?.schemas ?? {}) as Record<string, JsonObject>;
  const exampleOf = (schema: JsonObject | undefined): unknown => {
    const name = typeof schema?.['$ref'] === 'string' ? schema['$ref'].replace('#/components/schemas/', '') : undefined;
    const examples = name === undefined ? undefined : schemas[name]?.['examples'];
    return Array.isArray(examples) ? examples[0] : undefined;
  };
  for (const path of Object.values(openapi.paths ?? {}) as Record<string, JsonObject>[]) {
    for (const operation of Object.values(path)) {
      for (const response of Object.values((operation['responses'] ?? {}) as Record<string, JsonObject>)) {
        for (const media of Object.values((response['content'] ?? {}) as Record<string, JsonObject>)) {
          if ('example' in media || 'examples' in media) continue;
          const schema = media['schema'] as JsonObject | undefined;
          const example = schema?.['type'] === 'array' ? exampleOf(schema['items'] as JsonObject) : exampleOf(schema);
          if (example !== undefined) media['example'] = schema?.['type'] === 'array' ? [example] : example;
        }
      }
    }
  }
  return openapi;
}
