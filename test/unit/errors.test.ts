import Fastify, { type FastifyError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { errorHandling, toProblem } from '../../src/http/errors.js';

function fastifyError(properties: Partial<FastifyError> & { message?: string }): FastifyError {
  return Object.assign(new Error(properties.message ?? 'boom'), properties) as FastifyError;
}

function postgresError(code: string): FastifyError {
  return Object.assign(new Error('db said no'), { name: 'PostgresError', code });
}

describe('toProblem', () => {
  it('keeps a client error status and its message', () => {
    expect(toProblem(fastifyError({ statusCode: 409, code: 'CONFLICT', message: 'taken' }))).toEqual({
      type: 'about:blank',
      title: 'Conflict',
      status: 409,
      detail: 'taken',
      code: 'CONFLICT',
    });
  });

  it.each(['22021', '22001', '22P05', '22003', '23514'])('answers 422 for data PostgreSQL refuses (%s)', (code) => {
    expect(toProblem(postgresError(code))).toMatchObject({ status: 422, code: 'UNSTORABLE_VALUE' });
  });

  it.each(['ECONNREFUSED', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', '57P01', '57014', '08006', '53300'])(
    'answers 503 when the database is unavailable (%s)',
    (code) => {
      expect(toProblem(Object.assign(new Error('x'), { code }) as FastifyError)).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    },
  );

  it('answers 500 for anything else and says nothing internal', () => {
    const body = toProblem(fastifyError({ message: 'password=hunter2 at /srv/app/secret.ts:12' }));
    expect(body).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: 'An unexpected error occurred; the log has the details under this request id',
      code: 'INTERNAL_ERROR',
    });
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });

  it('does not trust a thrown 5xx status to be safe to show', () => {
    expect(toProblem(fastifyError({ statusCode: 502, message: 'upstream 10.0.0.7 refused' })).detail).not.toContain('10.0.0.7');
  });
});

describe('the error handler', () => {
  it('logs the cause of a 500 with the request id and sends a problem without it', async () => {
    const lines: Record<string, unknown>[] = [];
    const app = Fastify({
      logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } },
    });
    await app.register(errorHandling);
    app.get('/fails', async () => {
      throw new Error('secret internal detail');
    });
    const response = await app.inject({ method: 'GET', url: '/fails' });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.body).not.toContain('secret internal detail');
    const logged = lines.find((line) => line['msg'] === 'request failed');
    expect(logged).toMatchObject({ level: 50, reqId: expect.any(String) });
    expect(JSON.stringify(logged)).toContain('secret internal detail');
    await app.close();
  });
});
