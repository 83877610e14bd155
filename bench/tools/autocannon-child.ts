import autocannon from 'autocannon';
import { percentile } from '../stats.js';
import { non2xxOf, type LoadResult, type TimelinePoint } from './load-result.js';
import type { AutocannonJob } from './autocannon.js';

/**
 * The fallback load generator, in a process of its own (so its CPU is counted as the load
 * generator's, apart from the bench): runs one autocannon job and prints a LoadResult as JSON.
 * Unlike wrk, it sees every response, so statuses, per-status latency and per-second counts come free.
 */
async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as AutocannonJob;
  const latencies = new Map<string, number[]>();
  const seconds = new Map<number, Record<string, number>>();
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  let finish: (result: autocannon.Result) => void = () => {};
  let fail: (error: unknown) => void = () => {};
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // The callback form returns the instance, whose events see every response.
  const instance = autocannon(
    {
      url: job.url,
      method: job.method,
      connections: job.connections,
      timeout: job.timeoutS,
      ...(job.body === undefined ? {} : { body: job.body }),
      headers: job.headers,
      ...(job.amount === undefined ? { duration: job.durationS } : { amount: job.amount }),
    },
    (error: unknown, result: autocannon.Result) => (error ? fail(error) : finish(result)),
  );
  instance.on('response', (_client: autocannon.Client, statusCode: number, _bytes: number, responseTime: number) => {
    const status = String(statusCode);
    const list = latencies.get(status) ?? [];
    list.push(responseTime);
    latencies.set(status, list);
    const second = Math.floor((performance.now() - start) / 1000) + 1;
    const counts = seconds.get(second) ?? {};
    counts[status] = (counts[status] ?? 0) + 1;
    seconds.set(second, counts);
  });
  const result = await finished;
  const cpu = process.cpuUsage(cpuBefore);

  const all = [...latencies.values()].flat().sort((a, b) => a - b);
  const statuses = Object.fromEntries([...latencies].map(([status, list]) => [status, list.length]));
  const latencyByStatus: NonNullable<LoadResult['latencyByStatus']> = {};
  for (const [status, list] of latencies) {
    list.sort((a, b) => a - b);
    latencyByStatus[status] = { count: list.length, p50: percentile(list, 50), p90: percentile(list, 90), p99: percentile(list, 99), max: list[list.length - 1] ?? 0 };
  }
  const timeline: TimelinePoint[] = [...seconds].sort((a, b) => a[0] - b[0]).map(([t, byStatus]) => ({ t, rps: Object.values(byStatus).reduce((sum, count) => sum + count, 0), byStatus }));
  const loadResult: LoadResult = {
    requests: all.length,
    durationS: result.duration,
    rps: all.length / Math.max(result.duration, 1e-9),
    latencyMs: { mean: result.latency.mean, p50: percentile(all, 50), p90: percentile(all, 90), p99: percentile(all, 99), max: all[all.length - 1] ?? 0 },
    latencyCurve: [1, 5, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 99.99, 100].map((pct) => [pct, percentile(all, pct)]),
    statuses,
    non2xx: non2xxOf(statuses),
    // autocannon counts connection errors and timeouts together in `errors`.
    socketErrors: { connect: 0, read: 0, write: 0, other: Math.max(0, result.errors - result.timeouts) },
    timeouts: result.timeouts,
    latencyByStatus,
    timeline,
    timelineSource: 'responses counted per second by the autocannon process',
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(`AUTOCANNONJSON ${JSON.stringify(loadResult)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
