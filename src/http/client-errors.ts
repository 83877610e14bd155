import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { toProblem } from './errors.js';
import { PROBLEM_CONTENT_TYPE, problem, sendProblem, type Problem } from './problem.js';
import { API_SECURITY_HEADERS } from './security.js';

/**
 * Errors raised before a request reaches a route still get the service's one error body:
 * Node's HTTP parser rejecting the bytes (bad method, oversized headers, a timeout), and Fastify
 * rejecting the url (bad percent-encoding, an overlong path parameter).
 */

/** The API's security headers as lines of a raw response head: these errors run no hooks. */
const SECURITY_HEADER_LINES = Object.entries(API_SECURITY_HEADERS)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/** Node's parser errors: answered on the raw socket, which is then closed. */
export function answerClientError(error: ConnectionError, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const body = JSON.stringify(parserProblem(error));
  const { status } = JSON.parse(body) as Problem;
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n${SECURITY_HEADER_LINES}` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

function parserProblem(error: ConnectionError): Problem {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem(408, 'REQUEST_TIMEOUT', 'The request was not received in time');
    case 'HPE_HEADER_OVERFLOW':
      return problem(431, 'HEADERS_TOO_LARGE', 'The request headers are larger than this service accepts');
    default:
      return problem(400, 'MALFORMED_REQUEST', 'The request is not valid HTTP/1.1');
  }
}

/** Fastify's url errors, before routing. */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // Fastify answers these outside the routes' context, so no onRequest hook has set headers.
  void sendProblem(reply.headers(API_SECURITY_HEADERS).header('x-request-id', request.id), toProblem(error, request.id));
}
