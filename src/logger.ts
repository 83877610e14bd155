import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
import { ConfigError } from './config.js';
import { redact } from './redact.js';

export interface LoggerOptions {
  level: string;
  /** `json` (the default, on a terminal too) or `pretty`, for a person watching (LOG_FORMAT). */
  format?: 'json' | 'pretty';
  /** Where lines go, when not to a standard stream (tests). */
  destination?: DestinationStream;
  /** The standard stream: 1 (stdout, the default) or 2 (stderr, for commands whose results go to stdout). */
  fd?: 1 | 2;
  /**
   * Gather stdout lines into larger writes (flushed at least every FLUSH_INTERVAL_MS and at
   * exit): one system call per line is a large share of a request's cost under load.
   */
  buffered?: boolean;
}

const FLUSH_INTERVAL_MS = 250;

/**
 * JSON lines to stdout, wherever stdout goes (`docker run -t` ships JSON too); pretty lines only
 * when asked for. Credentials and bodies are never logged: request logs carry method, url and
 * status only, these paths are redacted in case anything logs a request's headers or a
 * connection's settings, and every line passes `redact` (a URL's password, known secrets), which
 * also covers error messages and fields such as postgres.js's `input`.
 */
export function createLogger({ level, format = 'json', destination, fd = 1, buffered = false }: LoggerOptions): Logger {
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
    hooks: { streamWrite: redact },
  };
  if (destination) return pino(options, destination);
  if (format === 'pretty') return pino(options, prettyStream(fd));
  // Unbuffered lines are written before the call returns: a supervisor's last line, logged just
  // before it exits, must not be lost.
  if (!buffered) return pino(options, pino.destination({ dest: fd, sync: true }));
  const stdout = pino.destination({ dest: fd, sync: false, minLength: 4096 });
  setInterval(() => stdout.flush(), FLUSH_INTERVAL_MS).unref();
  return pino(options, stdout);
}

/**
 * pino-pretty is a development dependency, loaded only when asked for: in this process and
 * synchronously (not as a transport thread), so that the last lines before an exit are written.
 */
function prettyStream(fd: 1 | 2): DestinationStream {
  let pretty: (options: PrettyOptions) => DestinationStream;
  try {
    pretty = createRequire(import.meta.url)('pino-pretty') as typeof pretty;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new ConfigError(
      'Invalid configuration: LOG_FORMAT=pretty needs the package pino-pretty, a development dependency that this ' +
        'installation does not have (install with `npm ci`, without --omit=dev), or set LOG_FORMAT=json',
    );
  }
  return pretty({ translateTime: 'SYS:HH:MM:ss.l', sync: true, destination: fd });
}
