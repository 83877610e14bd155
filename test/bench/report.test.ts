import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReport } from '../../bench/report/html.js';
import type { Results } from '../../bench/results.js';
import { summarize } from '../../bench/summary.js';
import { launchChromium } from '../helpers/chromium.js';

// Chromium starts slowly on a 2-core machine shared with other work.
const TIMEOUT = 30_000;

/** A short real --compare run (one or two repetitions of a few scenarios), trimmed. */
const fixture = JSON.parse(await readFile(new URL('./fixtures/results.json', import.meta.url), 'utf8')) as Results;
const scenarios = summarize(fixture);

let directory: string;
let reportUrl: string;
let html: string;
let browser: Browser | undefined;
let page: Page;
const requestedUrls: string[] = [];
const failedRequests: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'bench-report-test-'));
  html = renderReport(fixture);
  const file = path.join(directory, 'report.html');
  await writeFile(file, html);
  reportUrl = pathToFileURL(file).href;

  browser = await launchChromium();
  page = await browser.newPage();
  page.on('request', (request) => requestedUrls.push(request.url()));
  page.on('requestfailed', (request) => failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  await page.goto(reportUrl, { waitUntil: 'load' });
}, TIMEOUT);

afterAll(async () => {
  await browser?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

const count = (selector: string) => page.locator(selector).count();

describe('the HTML report of a bench run', { timeout: TIMEOUT }, () => {
  it('comes from a fixture with both servers and an overload scenario', () => {
    expect(fixture.runs.some((run) => run.target === 'ours')).toBe(true);
    expect(fixture.runs.some((run) => run.target === 'peer')).toBe(true);
    expect(scenarios.some((scenario) => scenario.kind.startsWith('overload'))).toBe(true);
  });

  it('draws a latency distribution, a throughput timeline and a CPU split for every scenario', async () => {
    expect(await count('svg.chart[data-chart="latency"]')).toBe(scenarios.length);
    expect(await count('svg.chart[data-chart="timeline"]')).toBe(scenarios.length);
    expect(await count('svg.chart[data-chart="cpu"]')).toBe(scenarios.length);
    for (const scenario of scenarios) {
      const section = page.locator(`#scenario-${scenario.scenario}`);
      const runs = fixture.runs.filter((run) => run.scenario === scenario.scenario);
      // One line per run: each repetition of each server.
      expect(await section.locator('svg[data-chart="latency"] path.series').count()).toBe(runs.filter((run) => run.latencyCurve.length > 0).length);
      expect(await section.locator('svg[data-chart="timeline"] path.series').count()).toBe(runs.filter((run) => run.timeline.points.length > 0).length);
      expect(await section.locator('svg[data-chart="cpu"] rect.bar').count()).toBeGreaterThan(0);
    }
  });

  it('shows outcome shares for overload runs, and ours-versus-peer bars with their ratios', async () => {
    expect(await count('svg.chart[data-chart="statuses"]')).toBe(scenarios.filter((scenario) => scenario.kind.startsWith('overload')).length);
    for (const chart of ['bars-rps', 'bars-ok-rps', 'bars-p99']) expect(await count(`svg.chart[data-chart="${chart}"] rect.bar`)).toBeGreaterThan(scenarios.length);
    const compared = scenarios.find((scenario) => scenario.ratio?.rps !== undefined)!;
    const ratio = compared.ratio!.rps!;
    const shown = ratio >= 10 ? ratio.toFixed(0) : ratio >= 1 ? ratio.toFixed(2) : ratio.toFixed(3);
    await expect(page.locator('svg[data-chart="bars-rps"]').textContent()).resolves.toContain(`(ours/peer ${shown}×)`);
    await expect(page.locator('table.summary').textContent()).resolves.toContain(`${shown}×`);
  });

  it('renders every chart with a visible size', async () => {
    const sizes = await page.locator('svg.chart').evaluateAll((charts) => charts.map((chart) => chart.getBoundingClientRect()).map(({ width, height }) => ({ width, height })));
    expect(sizes.length).toBeGreaterThan(0);
    for (const size of sizes) {
      expect(size.width).toBeGreaterThan(100);
      expect(size.height).toBeGreaterThan(40);
    }
  });

  it('is self-contained: no script, no request but its own file, no console error', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(?:src|href)="(?:https?:)?\/\//i);
    expect(requestedUrls).toEqual([reportUrl]);
    expect(failedRequests).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
