import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { startCluster } from './postgres.js';
import { runCommand, sleep, startDetached, stopTree, type StartedChild } from './processes.js';
import { median, round } from './stats.js';

/**
 * What counting a request for RATE_LIMIT_PER_MINUTE costs in latency: the service (built, 2
 * workers) without a limit, with the supervisor's count (an IPC round trip per request) and with
 * Redis (a round trip to redis-server), measured interleaved, one request at a time on one
 * keep-alive connection. A rough figure, not a load test.
 *
 *   npm run build && npx tsx bench/rate-limit-latency.ts [rounds] [requests per round]
 *
 * Needs postgresql-15 and redis-server (Debian packages).
 */

const rounds = Number(process.argv[2] ?? 5);
const perRound = Number(process.argv[3] ?? 100);
const PATHS = ['/items?limit=1', '/items/0'];

interface Service {
  name: string;
  baseUrl: string;
  agent: Agent;
  child: StartedChild;
  latencies: Map<string, number[]>;
}

function timedGet(agent: Agent, url: string): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    request(url, { agent }, (response) => {
      response.resume();
      response.on('end', () => {
        if (response.statusCode === 429 || response.statusCode! >= 500) reject(new Error(`${url}: ${response.statusCode}`));
        else resolve(Number(process.hrtime.bigint() - started) / 1e6);
      });
    })
      .on('error', reject)
      .end();
  });
}

async function waitForHealth(baseUrl: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const healthy = await fetch(`${baseUrl}/healthz`).then((response) => response.ok, () => false);
    if (healthy) return;
    await sleep(100);
  }
  throw new Error(`${baseUrl} did not start`);
}

const cluster = await startCluster();
const redisDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-bench-redis-'));
const redisPort = await freePort();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'no'], {
  stdio: 'ignore',
});
const services: Service[] = [];
try {
  await runCommand(path.join(cluster.binDir, 'createdb'), ['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', 'bench_rate_limit']);
  const databaseUrl = cluster.url('bench_rate_limit');
  await runCommand(process.execPath, ['dist/db/cli.js', 'migrate'], { env: { ...process.env, DATABASE_URL: databaseUrl } });
  const variants: [string, Record<string, string>][] = [
    ['no limit', {}],
    ['supervisor count', { RATE_LIMIT_PER_MINUTE: '1000000000' }],
    ['Redis count', { RATE_LIMIT_PER_MINUTE: '1000000000', REDIS_URL: `redis://127.0.0.1:${redisPort}` }],
  ];
  for (const [name, env] of variants) {
    const port = await freePort();
    const child = startDetached(process.execPath, ['dist/server.js', '--workers', '2'], {
      env: { ...process.env, DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', DB_POOL_MAX: '5', ...env },
    });
    services.push({ name, baseUrl: `http://127.0.0.1:${port}`, agent: new Agent({ keepAlive: true, maxSockets: 1 }), child, latencies: new Map() });
  }
  await Promise.all(services.map((service) => waitForHealth(service.baseUrl)));

  for (let round = 0; round <= rounds; round++) {
    for (const service of services) {
      for (const pathname of PATHS) {
        const latencies = [];
        for (let index = 0; index < perRound; index++) latencies.push(await timedGet(service.agent, `${service.baseUrl}${pathname}`));
        // Round 0 warms up (JIT, connections) and is not counted.
        if (round > 0) service.latencies.set(pathname, [...(service.latencies.get(pathname) ?? []), ...latencies]);
      }
    }
  }

  const baseline = services[0]!;
  for (const pathname of PATHS) {
    console.log(`GET ${pathname}: median latency over ${rounds} × ${perRound} requests, one at a time`);
    for (const service of services) {
      const value = median(service.latencies.get(pathname)!)!;
      const extra = value - median(baseline.latencies.get(pathname)!)!;
      console.log(`  ${service.name.padEnd(18)} ${round(value, 3)} ms${service === baseline ? '' : ` (${extra >= 0 ? '+' : ''}${round(extra, 3)} ms)`}`);
    }
  }
} finally {
  for (const service of services) {
    service.agent.destroy();
    await stopTree(service.child);
  }
  redis.kill('SIGTERM');
  await rm(redisDir, { recursive: true, force: true });
  await cluster.stop();
}
