import pino, { type DestinationStream, type Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout by default. */
  destination?: DestinationStream;
  /**
   * Gather stdout lines into larger writes (flushed at least every FLUSH_INTERVAL_MS and at
   * exit): one system call per line is a large share of a request's cost under load.
   */
  buffered?: boolean;
}

const FLUSH_INTERVAL_MS = 250;

/**
 * JSON lines to stdout, pretty only when a person watches a terminal. Credentials and bodies are
 * never logged: request logs carry method, url and status only, and these paths are redacted in
 * case anything logs a request's headers or a connection's settings.
 */
export function createLogger({ level, destination, buffered = false }: LoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'databaseUrl',
        '*.databaseUrl',
        'redisUrl',
        '*.redisUrl',
        'password',
        '*.password',
      ],
      censor: '[redacted]',
    },
  };
  if (destination) return pino(options, destination);
  if (process.stdout.isTTY) return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } });
  // Unbuffered lines are written before the call returns: a supervisor's last line, logged just
  // before it exits, must not be lost.
  if (!buffered) return pino(options, pino.destination({ dest: 1, sync: true }));
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => stdout.flush(), FLUSH_INTERVAL_MS).unref();
  return pino(options, stdout);
}
