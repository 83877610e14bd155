import Fastify, { type FastifyError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError, isConnectionFailure, translateDatabaseError } from '../../src/db/errors.js';
import { MigrationError } from '../../src/db/migrations-error.js';
import { ServiceError } from '../../src/errors.js';
import { errorHandling, toProblem } from '../../src/http/errors.js';

function fastifyError(properties: Partial<FastifyError> & { message?: string }): FastifyError {
  return Object.assign(new Error(properties.message ?? 'boom'), properties) as FastifyError;
}

function postgresError(code: string): Error {
  return Object.assign(new Error('db said no'), { name: 'PostgresError', code });
}

describe('toProblem', () => {
  it('renders a service error with its own status, code and message', () => {
    expect(toProblem(new ServiceError(422, 'IDEMPOTENCY_KEY_REUSED', 'key k was used') as unknown as FastifyError, 'req-1')).toEqual({
      type: 'about:blank',
      title: 'Unprocessable Entity',
      status: 422,
      detail: 'key k was used',
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
  });

  it('keeps the status and message of another client error, under a generic code', () => {
    expect(toProblem(fastifyError({ statusCode: 409, code: 'FST_SOMETHING', message: 'taken' }), 'req-1')).toEqual({
      type: 'about:blank',
      title: 'Conflict',
      status: 409,
      detail: 'taken',
      code: 'BAD_REQUEST',
    });
  });

  it('answers 500 for anything else, says nothing internal, and names the request id', () => {
    const body = toProblem(fastifyError({ message: 'password=hunter2 at /srv/app/secret.ts:12' }), 'req-42');
    expect(body).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: 'An unexpected error occurred; the log has the details under this request id',
      code: 'INTERNAL_ERROR',
      request_id: 'req-42',
    });
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });

  it('does not trust a thrown 5xx status to be safe to show', () => {
    expect(toProblem(fastifyError({ statusCode: 502, message: 'upstream 10.0.0.7 refused' }), 'req-1').detail).not.toContain('10.0.0.7');
  });
});

describe('translateDatabaseError', () => {
  it.each(['22021', '22001', '22P05', '22003', '23514'])('answers 422 for data PostgreSQL refuses (%s)', (code) => {
    expect(translateDatabaseError(postgresError(code), 'write')).toMatchObject({ statusCode: 422, code: 'UNSTORABLE_VALUE' });
  });

  it.each(['ECONNREFUSED', 'CONNECT_TIMEOUT', '53300', '57P03', '57014', '40P01', '40001'])(
    'answers 503 DATABASE_UNAVAILABLE when the work was not done (%s), for reads and writes',
    (code) => {
      for (const work of ['read', 'write'] as const) {
        expect(translateDatabaseError(Object.assign(new Error('x'), { code }), work)).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' });
      }
    },
  );

  it.each([
    ['25006', 'read_only_sql_transaction: a standby, after a failover'],
    ['53000', 'insufficient_resources'],
    ['53100', 'disk_full'],
    ['53200', 'out_of_memory'],
    ['53400', 'configuration_limit_exceeded'],
    ['57P04', 'database_dropped'],
    ['57P05', 'idle_session_timeout'],
  ])('answers 503 DATABASE_UNAVAILABLE, not a 500, when PostgreSQL refuses before any change (%s %s)', (code) => {
    for (const work of ['read', 'write'] as const) {
      const translated = translateDatabaseError(postgresError(code), work);
      expect(translated).toBeInstanceOf(DatabaseUnavailableError);
      expect(translated).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' });
    }
  });

  it.each(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'ECONNRESET', '57P01', '08006', '40003'])(
    'answers a write whose connection was lost (%s) with OUTCOME_UNKNOWN, a read with DATABASE_UNAVAILABLE',
    (code) => {
      const lost = Object.assign(new Error('x'), { code });
      expect(translateDatabaseError(lost, 'write')).toMatchObject({ statusCode: 503, code: 'OUTCOME_UNKNOWN' });
      expect(translateDatabaseError(lost, 'read')).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' });
    },
  );

  it('leaves a bug a bug (a 500)', () => {
    const bug = new TypeError('x is undefined');
    expect(translateDatabaseError(bug, 'read')).toBe(bug);
    // A statement the database cannot run (undefined_column): ours to fix, not the database's to recover from.
    const badQuery = postgresError('42703');
    expect(translateDatabaseError(badQuery, 'write')).toBe(badQuery);
  });
});

describe('isConnectionFailure (what a service waiting for its database retries)', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

  it.each([
    ['a refused connection', refused],
    ['the same, wrapped by the migrator', new MigrationError('Cannot connect to the database (for the migration lock)', { cause: refused })],
    ['a connection to several addresses, all refused (a code, no message)', Object.assign(new AggregateError([], ''), { code: 'ECONNREFUSED' })],
    ['a server starting up', postgresError('57P03')],
    ['a server that is full', postgresError('53300')],
    ['a connection lost', Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' })],
    ['a name that does not resolve yet', Object.assign(new Error('getaddrinfo EAI_AGAIN db'), { code: 'EAI_AGAIN' })],
  ])('retries %s', (_, error) => {
    expect(isConnectionFailure(error)).toBe(true);
  });

  it.each([
    ['a migration that fails', new MigrationError('0003_x failed while applying', { cause: postgresError('42P01') })],
    ['a value refused', postgresError('22001')],
    ['a bug', new TypeError('x is undefined')],
    ['a non-error', 'ECONNREFUSED'],
  ])('does not retry %s', (_, error) => {
    expect(isConnectionFailure(error)).toBe(false);
  });
});

describe('the error handler', () => {
  it('logs the cause of a 500 under the request id, and sends a problem that names the id but not the cause', async () => {
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
    expect(response.json()).toMatchObject({ status: 500, code: 'INTERNAL_ERROR', request_id: logged!['reqId'] });
    expect(JSON.stringify(logged)).toContain('secret internal detail');
    await app.close();
  });
});
