import pino, { type Logger } from 'pino';

export interface LoggerOptions {
  level: string;
}

/**
 * JSON lines to stdout, pretty only when a person watches a terminal. Credentials and bodies are
 * never logged: request logs carry method, url and status only, and these paths are redacted in
 * case anything logs a request's headers or a connection's settings.
 */
export function createLogger({ level }: LoggerOptions): Logger {
  return pino({
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'res.headers["set-cookie"]',
        'databaseUrl',
        'password',
        '*.password',
      ],
      censor: '[redacted]',
    },
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}
