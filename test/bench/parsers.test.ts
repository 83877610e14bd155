import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shellLine } from '../../bench/load-commands.js';
import { summarizeLog } from '../../bench/servers/server-log.js';
import { median, parseDuration, percentile } from '../../bench/stats.js';
import { timelineFromBytes } from '../../bench/timeline.js';
import { parseHey } from '../../bench/tools/hey.js';
import { parsePgbench } from '../../bench/tools/pgbench.js';
import { parseWrk } from '../../bench/tools/wrk.js';

// Outputs as the tools print them (hey 0.1.4, wrk 4.1 with bench/tools/lua, pgbench 15), shortened.
const HEY = `
Summary:
  Total:	4.1091 secs
  Slowest:	1.1693 secs
  Fastest:	0.0024 secs
  Average:	0.1642 secs
  Requests/sec:	486.7287

Latency distribution:
  10% in 0.0377 secs
  25% in 0.0681 secs
  50% in 0.1206 secs
  75% in 0.2096 secs
  90% in 0.3370 secs
  95% in 0.4342 secs
  99% in 0.8060 secs

Status code distribution:
  [200]	1990 responses
  [500]	5 responses

Error distribution:
  [3]	Post "http://127.0.0.1:8000/items": dial tcp 127.0.0.1:8000: connect: connection refused
  [2]	Post "http://127.0.0.1:8000/items": context deadline exceeded (Client.Timeout exceeded while awaiting headers)
`;

const WRK_REPORT =
  'WRKJSON {"requests":36707,"duration_us":3102560,"bytes":36651822,"errors":{"connect":1,"read":2,"write":0,"status":20381,"timeout":3},' +
  '"latency_us":{"mean":91576.1,"stdev":94534.5,"max":539288,"percentiles":[[1,1103],[50,56274],[90,224492],[99,414610],[99.99,530000]]}}';
const WRK_STATUS =
  'WRKSTATUS {"buckets_per_e":20,"statuses":{"201":16326,"503":20381},"seconds":[[0,"2xx",5000],[0,"503",7000],[1,"2xx",6000],[1,"503",7000],[2,"2xx",5326],[2,"503",6381]],' +
  '"latency_buckets":[["503",100,10],["503",140,1],["2xx",120,5]]}';

const PGBENCH = `pgbench (15.18 (Debian 15.18-0+deb12u1))
progress: 1.0 s, 25214.8 tps, lat 1.514 ms stddev 0.967, 0 failed
duration: 3 s
number of transactions actually processed: 80591
number of failed transactions: 0 (0.000%)
latency average = 1.474 ms
tps = 27091.624627 (without initial connection time)
`;

describe('parseHey', () => {
  it('reads rate, latency percentiles, statuses and classified errors', () => {
    const result = parseHey(HEY);
    expect(result.rps).toBe(486.7287);
    expect(result.requests).toBe(1995);
    expect(result.latencyMs).toEqual({ mean: 164.2, p50: 120.6, p90: 337, p99: 806, max: 1169.3 });
    expect(result.latencyCurve[0]).toEqual([0, 2.4]);
    expect(result.statuses).toEqual({ '200': 1990, '500': 5 });
    expect(result.non2xx).toBe(5);
    expect(result.socketErrors.connect).toBe(3);
    expect(result.timeouts).toBe(2);
    expect(Object.keys(result.errorDetail ?? {})).toHaveLength(2);
  });

  it('fails loudly on output without a summary', () => {
    expect(() => parseHey('hey: connection refused')).toThrow(/no summary/);
  });
});

describe('parseWrk', () => {
  it('reads the report line: ≥400 count, socket errors, timeouts, latency in ms', () => {
    const result = parseWrk(`Running 3s test\n${WRK_REPORT}\n`);
    expect(result.requests).toBe(36707);
    expect(result.rps).toBeCloseTo(36707 / 3.10256, 3);
    expect(result.latencyMs.p99).toBe(414.61);
    expect(result.latencyCurve.at(-1)).toEqual([100, 539.288]);
    expect(result.non2xx).toBe(20381);
    expect(result.socketErrors).toEqual({ connect: 1, read: 2, write: 0, other: 0 });
    expect(result.timeouts).toBe(3);
    expect(result.statuses).toBeUndefined();
  });

  it('adds exact statuses, a per-second timeline and latency by status from the overload script', () => {
    const result = parseWrk(`${WRK_REPORT}\n${WRK_STATUS}\n`);
    expect(result.statuses).toEqual({ '201': 16326, '503': 20381 });
    expect(result.timeline?.map((point) => point.rps)).toEqual([12000, 13000, 11707]);
    expect(result.timeline?.[0]?.byStatus).toEqual({ '2xx': 5000, '503': 7000 });
    // Bucket 100 ≈ e^5 µs; bucket 140 ≈ e^7 µs.
    expect(result.latencyByStatus?.['503']?.count).toBe(11);
    expect(result.latencyByStatus?.['503']?.p50).toBeCloseTo(Math.exp(5) / 1000, 6);
    expect(result.latencyByStatus?.['503']?.max).toBeCloseTo(Math.exp(7) / 1000, 6);
  });
});

describe('parsePgbench', () => {
  it('reads the summary, and percentiles and a timeline from the per-transaction logs, then gzips them', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'bench-parsers-'));
    try {
      const prefix = path.join(directory, 'run.pgbench-log');
      // client_id transaction_no latency_us script_no epoch_s epoch_us
      await writeFile(`${prefix}.100`, ['0 1 1000 0 1700000000 1', '0 2 3000 0 1700000000 9', '1 1 2000 0 1700000001 5'].join('\n') + '\n');
      await writeFile(`${prefix}.100.1`, '2 1 4000 0 1700000001 7\n');
      const result = await parsePgbench(PGBENCH, prefix);
      expect(result.rps).toBe(27091.624627);
      expect(result.requests).toBe(80591);
      expect(result.latencyMs).toMatchObject({ mean: 1.474, p50: 2, max: 4 });
      expect(result.timeline).toEqual([{ t: 1, rps: 2 }, { t: 2, rps: 2 }]);
      expect(await readdir(directory)).toEqual(['run.pgbench-log.log.gz']);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('summarizeLog', () => {
  it('counts access-log statuses with server-side latency, and warnings and errors of both servers', () => {
    const text = [
      '{"level":30,"method":"GET","url":"/items","status":200,"ms":2.5,"msg":"request completed"}',
      '{"level":30,"method":"GET","url":"/items","status":503,"ms":0.1,"msg":"request completed"}',
      '{"level":40,"msg":"slow"}',
      '{"level":50,"status":500,"ms":9,"msg":"request errored"}',
      '[2026-11-29 02:15:24 +0000] [20594] [ERROR] Exception in ASGI application',
      '[2026-11-29 02:15:24 +0000] [20594] [INFO] Worker exiting',
    ].join('\n');
    const summary = summarizeLog(text);
    expect(summary.lines).toBe(6);
    expect(summary.statuses).toEqual({ '200': 1, '503': 1, '500': 1 });
    expect(summary.latencyByStatus['200']).toEqual({ count: 1, p50: 2.5, p99: 2.5, max: 2.5 });
    expect(summary.warnings).toBe(1);
    expect(summary.errors).toBe(2);
    expect(summary.samples).toHaveLength(3);
  });
});

describe('shellLine', () => {
  it('prints a command a person can paste, with paths relative to the results folder, option values included', () => {
    const dir = '/tmp/results/2026';
    expect(shellLine(['pgbench', '-f', `${dir}/raw/scripts/pgbench-pages.sql`, `--log-prefix=${dir}/raw/1-pages-database.pgbench-log`, '-H', 'Content-Type: application/json'], dir)).toBe(
      "pgbench -f raw/scripts/pgbench-pages.sql --log-prefix=raw/1-pages-database.pgbench-log -H 'Content-Type: application/json'",
    );
  });
});

describe('helpers', () => {
  it('median, percentile, durations, and a byte-based timeline whose mean is the run rate', () => {
    expect(median([3, undefined, 1, 2, Number.NaN])).toBe(2);
    expect(median([4, 1])).toBe(2.5);
    expect(median([])).toBeUndefined();
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 100)).toBe(4);
    expect(parseDuration('10s')).toBe(10);
    expect(parseDuration('1.5m')).toBe(90);
    expect(parseDuration('500ms')).toBe(0.5);
    expect(() => parseDuration('ten')).toThrow();
    const sample = { loadgen: 0, server: 0, postgres: 0, machine: 0 };
    const timeline = timelineFromBytes([{ ...sample, t: 1, bytesReceived: 100 }, { ...sample, t: 2, bytesReceived: 300 }], 1000);
    expect(timeline).toEqual([{ t: 1, rps: 500 }, { t: 2, rps: 1500 }]);
  });
});
