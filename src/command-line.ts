import { parseArgs } from 'node:util';
import { ConfigError } from './config.js';

/**
 * `npm start -- [options]`: Gunicorn's options, each the twin of an environment variable. The
 * command line is turned into variables, so `config.ts` stays the one place that validates them.
 */

interface OptionSpec {
  flag: string;
  env: string;
  value?: string;
  help: string;
}

const OPTIONS: OptionSpec[] = [
  { flag: 'workers', env: 'WEB_CONCURRENCY', value: 'N', help: 'worker processes (default: the available cores)' },
  { flag: 'bind', env: 'HOST, PORT', value: 'HOST:PORT', help: 'address to listen on (default 0.0.0.0:8000)' },
  { flag: 'timeout', env: 'WORKER_TIMEOUT', value: 'SECONDS', help: 'kill a worker whose event loop is blocked this long (30)' },
  { flag: 'graceful-timeout', env: 'GRACEFUL_TIMEOUT', value: 'SECONDS', help: 'time in-flight requests get on shutdown or reload (30)' },
  { flag: 'max-requests', env: 'MAX_REQUESTS', value: 'N', help: 'recycle a worker after N requests (0: never)' },
  { flag: 'max-requests-jitter', env: 'MAX_REQUESTS_JITTER', value: 'N', help: 'add 0..N to max-requests per worker, so they do not recycle together' },
  { flag: 'migrate', env: 'MIGRATE_ON_START', help: 'apply pending migrations before the first worker starts (--no-migrate: do not);\n      default: on with the embedded database, off with DATABASE_URL' },
  { flag: 'single-process', env: 'SINGLE_PROCESS', help: 'serve in one process without a supervisor (what `npm run dev` and the image do)' },
];

export interface CommandLine {
  help: boolean;
  /** Environment variables set by the options given. */
  overrides: Record<string, string>;
}

export function parseCommandLine(argv: string[]): CommandLine {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowNegative: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(OPTIONS.map(({ flag, value }) => [flag, { type: value ? 'string' : 'boolean' } as const])),
      },
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${helpText()}`);
  }

  const overrides: Record<string, string> = {};
  for (const { flag, env } of OPTIONS) {
    const value = values[flag];
    if (value === undefined) continue;
    if (flag === 'bind') Object.assign(overrides, parseBind(String(value)));
    else overrides[env] = String(value);
  }
  return { help: values['help'] === true, overrides };
}

function parseBind(bind: string): { HOST: string; PORT: string } {
  // HOST:PORT, with an IPv6 host in brackets: [::]:8000
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(bind);
  if (!match) throw new ConfigError(`Invalid configuration: --bind must be HOST:PORT, got "${bind}"`);
  return { HOST: (match[1] ?? match[2])!, PORT: match[3]! };
}

export function helpText(): string {
  const rows = OPTIONS.map(({ flag, env, value, help }) => {
    const option = `--${flag}${value ? ` ${value}` : ''}`;
    return `  ${option.padEnd(28)} ${env.padEnd(20)} ${help}`;
  });
  return [
    'usage: npm start -- [options]      (or: node dist/server.js [options])',
    '',
    `  ${'option'.padEnd(28)} ${'environment'.padEnd(20)} meaning`,
    ...rows,
    `  ${'--help'.padEnd(28)} ${''.padEnd(20)} show this text`,
    '',
    'Signals to the supervisor: TERM/INT graceful stop (a second TERM/INT, or QUIT, during it: stop at once),',
    'QUIT immediate stop, HUP rolling reload, TTIN one worker more, TTOU one worker fewer.',
    'Every other setting is an environment variable (README).',
  ].join('\n');
}
