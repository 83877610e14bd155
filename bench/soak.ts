import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

/**
 * `npm run bench:soak -- --db URL [--minutes 10] [--connections 100]`: our service under a steady
 * load for a long while, sampling each worker's resident memory, to show it stays flat (no leak).
 * The load alternates GET (wrk) and POST (wrk with a Lua body) in 30 s legs, so both paths run.
 * Prints a table and writes the samples to soak.json beside the current directory.
 */

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    minutes: { type: 'string', default: '10' },
    connections: { type: 'string', default: '100' },
    port: { type: 'string', default: '8099' },
    out: { type: 'string', default: 'soak.json' },
  },
});
if (!values.db) throw new Error('usage: npm run bench:soak -- --db postgres://… [--minutes 10] [--connections 100]');

const minutes = Number(values.minutes);
const url = `http://127.0.0.1:${values.port}`;
const LEG_SECONDS = 30;
const WARM_UP_SECONDS = 60;

interface Sample {
  atSeconds: number;
  rssMbByWorker: Record<number, number>;
}

async function rssMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status && /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Math.round(Number(kb) / 102.4) / 10 : undefined;
}

async function childPids(pid: number): Promise<number[]> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return children.split(' ').filter(Boolean).map(Number);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(output));
  });
}

async function main(): Promise<void> {
  await run('node', ['dist/db/cli.js', 'migrate'], { ...process.env, DATABASE_URL: values.db, LOG_LEVEL: 'warn' });
  const server: ChildProcess = spawn('node', ['dist/server.js', '--workers', '2'], {
    env: { ...process.env, DATABASE_URL: values.db, HOST: '127.0.0.1', PORT: values.port, LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const stop = () => server.kill('SIGTERM');
  process.on('SIGINT', stop);
  try {
    await sleep(3_000);
    const workers = await childPids(server.pid!);
    if (workers.length !== 2) throw new Error(`expected 2 workers, found ${workers.length}`);
    await writeFile('/tmp/soak-post.lua', 'wrk.method = "POST"\nwrk.body = \'{"name":"soak","description":"y"}\'\nwrk.headers["Content-Type"] = "application/json"\n');

    const samples: Sample[] = [];
    const started = Date.now();
    const sampler = setInterval(() => {
      void Promise.all(workers.map(async (pid) => [pid, await rssMb(pid)] as const)).then((pairs) => {
        samples.push({ atSeconds: Math.round((Date.now() - started) / 1000), rssMbByWorker: Object.fromEntries(pairs) as Record<number, number> });
      });
    }, 10_000);

    let requests = 0;
    for (let leg = 0; (Date.now() - started) / 60_000 < minutes; leg++) {
      const post = leg % 2 === 1;
      const output = await run('wrk', [
        '-t2', `-c${values.connections}`, `-d${LEG_SECONDS}s`,
        ...(post ? ['-s', '/tmp/soak-post.lua', `${url}/items`] : [`${url}/items?limit=10`]),
      ]);
      requests += Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
      if (/Non-2xx|Socket errors/.test(output)) console.log(output);
    }
    clearInterval(sampler);

    const report = workers.map((pid) => {
      const series = samples.map((sample) => ({ at: sample.atSeconds, mb: sample.rssMbByWorker[pid] })).filter((point) => point.mb !== undefined);
      const afterWarmUp = series.filter((point) => point.at >= WARM_UP_SECONDS);
      const first = afterWarmUp[0]?.mb ?? Number.NaN;
      const last = afterWarmUp.at(-1)?.mb ?? Number.NaN;
      const max = Math.max(...series.map((point) => point.mb!));
      return { pid, firstAfterWarmUpMb: first, lastMb: last, maxMb: max, growthPercent: Math.round(((last - first) / first) * 1000) / 10 };
    });
    console.log(`soak: ${minutes} min at ${values.connections} connections, ${requests} requests (GET and POST legs of ${LEG_SECONDS} s)`);
    console.table(report);
    await writeFile(values.out, JSON.stringify({ minutes, connections: Number(values.connections), requests, report, samples }, null, 2));
  } finally {
    stop();
  }
}

await main();
