import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/**
 * One log line per request, when it ends, with what an operator needs and nothing a client sent
 * beyond the method and url (no bodies, no headers). Fastify's default is two lines per request.
 */
export class AccessLog extends LogController {
  /**
   * Where the lines without an error go (any status: Fastify passes an error only when a hook that
   * runs after the response fails): they hold only the fields below, none of which the logger's
   * redaction paths name, so they skip matching them, a good part of a line's cost. Lines with an
   * error keep the request's logger and its redaction. Every line still passes the logger's text
   * redaction (see logger.ts), which covers secrets in a url.
   */
  readonly #completed: FastifyBaseLogger;

  constructor(logger: FastifyBaseLogger) {
    super({ requestIdLogLabel: 'requestId' });
    this.#completed = logger.child({}, { redact: [] });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    if (error) reply.log.error({ method: request.method, url: request.url, status: reply.statusCode, ms, err: error }, 'request errored');
    // The request's logger (pino's, as buildApp makes it) decides the level: a route's or a
    // plugin's `logLevel` still applies.
    else if ((reply.log as Logger).isLevelEnabled('info')) this.#completed.info({ [this.requestIdLogLabel]: request.id, method: request.method, url: request.url, status: reply.statusCode, ms }, 'request completed');
  }
}
