import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from './load-result.js';

/** One autocannon run, as handed to autocannon-child.ts. */
export interface AutocannonJob {
  url: string;
  method: 'GET' | 'POST';
  body?: string;
  headers: Record<string, string>;
  connections: number;
  durationS?: number;
  amount?: number;
  timeoutS: number;
}

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'autocannon-child.ts');

/** `node --import tsx autocannon-child.ts JOB`: the fallback when wrk or hey is missing. */
export function autocannonArgs(job: AutocannonJob): string[] {
  return [process.execPath, '--import', 'tsx', CHILD, JSON.stringify(job)];
}

export function parseAutocannon(output: string): LoadResult {
  const line = output.split('\n').find((candidate) => candidate.startsWith('AUTOCANNONJSON '));
  if (!line) throw new Error(`autocannon printed no result:\n${output.trim().slice(-1500)}`);
  return JSON.parse(line.slice('AUTOCANNONJSON '.length)) as LoadResult;
}
