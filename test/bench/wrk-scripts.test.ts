import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWrk, writeWrkScript, type WrkScript } from '../../bench/tools/wrk.js';
import { systemTool } from '../helpers/system-tools.js';

const run = promisify(execFile);
const wrk = systemTool('wrk');
const ROWS = 1000;
const LIMITS = [10, 50, 100];

interface Seen {
  method: string;
  url: string;
  contentType?: string;
  body: string;
  requestId?: string;
}

// A real wrk against a real HTTP server that records every request: what each script sends.
let server: Server;
let origin: string;
let directory: string;
let seen: Seen[] = [];

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'bench-wrk-scripts-'));
  server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const requestId = request.headers['x-request-id'];
      seen.push({ method: request.method!, url: request.url!, body, ...(request.headers['content-type'] ? { contentType: request.headers['content-type'] } : {}), ...(typeof requestId === 'string' ? { requestId } : {}) });
      response.writeHead(request.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', ...(typeof requestId === 'string' ? { 'x-request-id': requestId } : {}) });
      response.end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

/** Runs wrk with a script for a second at a few connections; returns what the server saw and wrk's own result. */
async function drive(script: WrkScript, rows = ROWS): Promise<{ requests: Seen[]; output: string }> {
  const file = await writeWrkScript(directory, script, { rows, limits: LIMITS });
  seen = [];
  const { stdout } = await run(wrk.path!, ['-t2', '-c4', '-d1s', '--timeout', '5s', '-s', file, origin]);
  return { requests: seen, output: stdout };
}

const pagePattern = /^\/items\?after=(\d+)&limit=(\d+)$/;
const itemPattern = /^\/items\/(\d+)$/;
const share = (requests: Seen[], test: (request: Seen) => boolean) => requests.filter(test).length / requests.length;

describe.skipIf(wrk.missing)('the random traffic scripts (bench/tools/lua/random.lua), as wrk runs them', { timeout: 30_000 }, () => {
  it('pages: GET /items?after=A&limit=L, A uniform over the table, L one of 10, 50, 100', async () => {
    const { requests, output } = await drive('pages');
    expect(requests.length).toBeGreaterThan(500);
    const pages = requests.map((request) => pagePattern.exec(request.url));
    expect(requests.every((request) => request.method === 'GET')).toBe(true);
    expect(pages.every(Boolean)).toBe(true);
    const afters = pages.map((match) => Number(match![1]));
    const limits = pages.map((match) => Number(match![2]));
    expect(Math.min(...afters)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...afters)).toBeLessThan(ROWS);
    // Uniform: each tenth of the table gets about a tenth of the requests.
    const tenths = Array.from({ length: 10 }, (_, tenth) => afters.filter((after) => Math.floor(after / (ROWS / 10)) === tenth).length / afters.length);
    for (const tenth of tenths) expect(tenth).toBeGreaterThan(0.06);
    expect([...new Set(limits)].sort((a, b) => a - b)).toEqual(LIMITS);
    for (const limit of LIMITS) expect(share(requests, (request) => request.url.endsWith(`limit=${limit}`))).toBeGreaterThan(0.28);
    expect(parseWrk(output).requests).toBeGreaterThan(0);
  });

  it('by-id: GET /items/{id}, ids of existing rows spread over the table', async () => {
    const { requests } = await drive('by-id');
    const ids = requests.map((request) => Number(itemPattern.exec(request.url)?.[1]));
    expect(ids.every((id) => Number.isInteger(id) && id >= 1 && id <= ROWS)).toBe(true);
    expect(new Set(ids).size).toBeGreaterThan(Math.min(requests.length, ROWS) / 3);
  });

  it('mix: 70% pages, 20% by id, 10% POST /items with a JSON body', async () => {
    const { requests } = await drive('mix');
    expect(requests.length).toBeGreaterThan(1000);
    expect(share(requests, (request) => pagePattern.test(request.url))).toBeCloseTo(0.7, 1);
    expect(share(requests, (request) => itemPattern.test(request.url))).toBeCloseTo(0.2, 1);
    const posts = requests.filter((request) => request.method === 'POST');
    expect(posts.length / requests.length).toBeCloseTo(0.1, 1);
    for (const post of posts) {
      expect(post.url).toBe('/items');
      expect(post.contentType).toBe('application/json');
      expect(JSON.parse(post.body)).toEqual({ name: expect.stringMatching(/^mix \d+-\d+$/), description: 'posted by the mix scenario' });
    }
  });

  it('the two wrk threads send different sequences', async () => {
    // Ids from a huge range rarely repeat; with one seed for both threads, every id would arrive twice.
    const { requests } = await drive('by-id', 1e9);
    const counts = new Map<string, number>();
    for (const request of requests) counts.set(request.url, (counts.get(request.url) ?? 0) + 1);
    expect([...counts.values()].filter((count) => count === 1).length).toBeGreaterThan(requests.length / 2);
  });

  it('overload-by-id: random ids with a unique X-Request-Id each, every status counted', async () => {
    const { requests, output } = await drive('overload-by-id');
    expect(requests.every((request) => itemPattern.test(request.url))).toBe(true);
    expect(new Set(requests.map((request) => request.requestId)).size).toBe(requests.length);
    const result = parseWrk(output);
    expect(Object.keys(result.statuses ?? {})).toEqual(['200']);
    expect(result.latencyByStatus?.['2xx']?.count).toBe(result.statuses?.['200']);
  });
});
