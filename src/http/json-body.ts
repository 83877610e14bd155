import type { FastifyBodyParser, FastifyInstance } from 'fastify';
import { ServiceError } from '../errors.js';

type StringParser = ReturnType<FastifyInstance['getDefaultJsonParser']>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Fastify's JSON parser (with its prototype-poisoning checks), fed only bodies that are valid
 * UTF-8. Decoding leniently would store U+FFFD in place of the bytes a client sent: silent data
 * loss. JSON text must be UTF-8 (RFC 8259 §8.1), so such a body is a 400.
 */
export function strictJsonParser(parseJson: StringParser): FastifyBodyParser<Buffer> {
  return (request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      done(new ServiceError(400, 'INVALID_UTF8', 'The body is not valid UTF-8'), undefined);
      return;
    }
    void parseJson(request, text, done);
  };
}
