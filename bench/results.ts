import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CpuSplit } from './measure.js';
import type { Options, ScenarioKind } from './options.js';
import type { OverloadCheck } from './overload.js';
import type { Sample } from './sampler.js';
import type { RunTarget } from './scenarios.js';
import type { ServerLogSummary } from './servers/server-log.js';
import type { ServiceDescription, TargetName } from './servers/service.js';
import type { Settled } from './settle.js';
import type { LoadResult, TimelinePoint } from './tools/load-result.js';

export const RESULTS_SCHEMA = 1;

export interface DatabaseCounts {
  commits: number;
  rollbacks: number;
  rowsInserted: number;
  /** Connections the server opened to its database meanwhile. */
  sessions: number;
  /** Responses the counters are divided by: the run's, its warm-up's and the table check's. */
  requests: number;
  commitsPerRequest: number;
  rollbacksPerRequest: number;
  /** Rows inserted per commit: above 1 when a server batches inserts. */
  rowsPerCommit?: number;
}

export interface RunResult extends Omit<LoadResult, 'timeline' | 'timelineSource' | 'cpuSeconds'> {
  id: string;
  rep: number;
  scenario: string;
  title: string;
  kind: ScenarioKind;
  target: RunTarget;
  tool: string;
  command: string;
  connections: number;
  /** The pinned table size, and how many rows one GET returned just before the run. */
  rows?: number;
  rowsServed?: number;
  startedAt: string;
  wallS: number;
  /** Goodput: responses below 400 per second (the overload runs' 503s are cheap and inflate req/s). */
  okRps: number;
  /** Share of responses that were 503, when statuses are known. */
  share503?: number;
  /** Overload runs: against the 100-connection run and Little's law. */
  overload?: OverloadCheck;
  timeline: { source: string; points: TimelinePoint[] };
  cpu: CpuSplit;
  cpuTimeline: Sample[];
  database?: DatabaseCounts;
  /** What the server logged during the run (ours: access-log statuses and server-side latency). */
  serverLog?: ServerLogSummary;
  settle: Settled;
  /** Seconds spent before the measurement: drain, previousRun (its counters), pin, warmup, checkpoint, settle. */
  phases?: Record<string, number>;
  warmup?: { requests: number; seconds: number };
  /** Files in the results folder: the tool's raw output and the like. */
  raw: string[];
  error?: string;
}

export interface ServiceRecord {
  label: string;
  baseUrl: string;
  description: ServiceDescription;
}

export interface Results {
  schema: number;
  startedAt: string;
  finishedAt?: string;
  /** True while running, or when the run was interrupted or failed. */
  partial: boolean;
  failure?: string;
  machine: { cores: number; kernel: string; node: string; tools: Record<string, string> };
  options: Omit<Options, 'reportOnly'>;
  services: Partial<Record<TargetName, ServiceRecord>>;
  postgres?: { settings: Record<string, string>; ownCluster: boolean; note?: string };
  runs: RunResult[];
  notes: string[];
}

/** Written after every run (atomically), so an interrupted bench still leaves its results. */
export async function writeResults(directory: string, results: Results): Promise<string> {
  await mkdir(directory, { recursive: true });
  const file = path.join(directory, 'results.json');
  await writeFile(`${file}.tmp`, `${JSON.stringify(results, null, 1)}\n`);
  await rename(`${file}.tmp`, file);
  return file;
}

export async function readResults(file: string): Promise<Results> {
  const results = JSON.parse(await readFile(file, 'utf8')) as Results;
  if (results.schema !== RESULTS_SCHEMA) throw new Error(`${file}: results schema ${results.schema}, expected ${RESULTS_SCHEMA}`);
  return results;
}
