import { Writable } from 'node:stream';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { addSecret, formatError, redact } from '../../src/redact.js';

/** A password with the characters that break a URL when left unencoded. */
const PASSWORD = 's3cr#t/pa@ss?w0rd';
const MALFORMED_URL = `postgres://app:${PASSWORD}@db.internal:5432/items`;

/** The error postgres.js throws for a URL with an unencoded `#`: it carries the whole URL. */
function postgresUrlError(): Error {
  try {
    postgres(MALFORMED_URL);
  } catch (error) {
    return error as Error;
  }
  throw new Error('postgres.js accepted a malformed URL');
}

function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), lines };
}

describe('redact', () => {
  it.each([
    ['postgres://app:pw@db:5432/items', 'postgres://app:[redacted]@db:5432/items'],
    [MALFORMED_URL, 'postgres://app:[redacted]@db.internal:5432/items'],
    [`input: '${MALFORMED_URL}'`, `input: 'postgres://app:[redacted]@db.internal:5432/items'`],
    [`{"url":"postgresql://u:p%23w@h/db","next":"a@b"}`, `{"url":"postgresql://u:[redacted]@h/db","next":"a@b"}`],
    ['postgres://app@db/items and postgres://db/items', 'postgres://app@db/items and postgres://db/items'],
    ['no secrets here', 'no secrets here'],
  ])('hides the password in %s', (text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it('hides a secret the process was told about, wherever it appears and however it is escaped', () => {
    addSecret('k3y-"quoted"\\value');
    expect(redact('Bearer k3y-"quoted"\\value')).toBe('Bearer [redacted]');
    expect(redact(JSON.stringify({ key: 'k3y-"quoted"\\value' }))).toBe('{"key":"[redacted]"}');
  });
});

describe('formatError', () => {
  it("shows postgres.js's error for a malformed URL without the password", () => {
    const text = formatError(postgresUrlError());
    expect(text).toContain('Invalid URL');
    expect(text).toContain('postgres://app:[redacted]@db.internal:5432/items');
    expect(text).not.toContain('s3cr');
  });

  it('shows a configuration error as its one line', () => {
    expect(formatError(new ConfigError(`Invalid configuration: ${MALFORMED_URL}`))).toBe(
      'Invalid configuration: postgres://app:[redacted]@db.internal:5432/items',
    );
  });
});

describe('the logger', () => {
  it('never writes a password, in a message, a field or an error', () => {
    const { logger, lines } = capturedLogger();
    logger.error({ err: postgresUrlError() }, 'could not connect');
    logger.warn({ settings: { connection: MALFORMED_URL } }, `retrying ${MALFORMED_URL}`);
    logger.info({ databaseUrl: MALFORMED_URL, password: PASSWORD }, 'settings');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain('s3cr');
      expect(line).not.toContain('w0rd');
    }
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'could not connect', err: { input: 'postgres://app:[redacted]@db.internal:5432/items' } });
    expect(JSON.parse(lines[1]!)).toMatchObject({
      msg: 'retrying postgres://app:[redacted]@db.internal:5432/items',
      settings: { connection: 'postgres://app:[redacted]@db.internal:5432/items' },
    });
  });
});
