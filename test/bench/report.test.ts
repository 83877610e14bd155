import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReport } from '../../bench/report/html.js';
import type { Results } from '../../bench/results.js';
import { baselineScenarioId, TRAFFIC_LABELS } from '../../bench/scenarios.js';
import { summarize } from '../../bench/summary.js';
import { launchChromium } from '../helpers/chromium.js';

// Chromium starts slowly on a 2-core machine shared with other work.
const TIMEOUT = 30_000;

/** A short real --compare run with both peers (two repetitions of a few scenarios), trimmed. */
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
  it('comes from a fixture with every target, the realistic traffic and overload scenarios', () => {
    expect([...new Set(fixture.runs.map((run) => run.target))].sort()).toEqual(['database', 'minimal', 'ours', 'peer']);
    expect(scenarios.filter((scenario) => TRAFFIC_LABELS[scenario.kind]).map((scenario) => scenario.kind)).toEqual(['same-page', 'pages', 'by-id', 'mix']);
    expect(scenarios.some((scenario) => scenario.kind.startsWith('overload'))).toBe(true);
  });

  it('leads with the realistic traffic: ours, the minimal peer, ours ÷ minimal and pgbench on the same SQL, from the medians', async () => {
    const rows = page.locator('table.realistic tbody tr');
    expect(await rows.count()).toBe(4);
    for (const [index, summary] of scenarios.filter((scenario) => TRAFFIC_LABELS[scenario.kind]).entries()) {
      const cells = (await rows.nth(index).locator('th, td').allTextContents()).map((text) => text.trim());
      const { ours, minimal, database } = summary.byTarget;
      const ratio = ours!.rps! / minimal!.rps!;
      expect(cells.slice(0, 6)).toEqual([
        TRAFFIC_LABELS[summary.kind],
        Math.round(ours!.rps!).toLocaleString('en-US'),
        Math.round(minimal!.rps!).toLocaleString('en-US'),
        `${ratio >= 10 ? ratio.toFixed(0) : ratio >= 1 ? ratio.toFixed(2) : ratio.toFixed(3)}×`,
        database ? `${Math.round(database.rps!).toLocaleString('en-US')} tps` : '–',
        database ? `${((100 * ours!.rps!) / database.rps!).toFixed(0)}%` : '–',
      ]);
      // Errors, timeouts and non-2xx per target, summed over the repetitions.
      expect(cells[7]).toBe(`${ours!.socketErrors} / ${ours!.timeouts} / ${ours!.non2xx}`);
    }
  });

  it('checks every overload run of every server against its 100-connection run and Little\'s law', async () => {
    const expected = scenarios.flatMap((scenario) => Object.keys(scenario.overload?.byTarget ?? {}).map((target) => `${scenario.scenario} ${target}`));
    expect(expected.length).toBeGreaterThan(2);
    expect(await page.locator('table.overload tbody tr').count()).toBe(expected.length);
    const first = scenarios.find((scenario) => scenario.overload)!;
    const check = first.overload!.byTarget.ours!;
    const text = await page.locator('table.overload tbody tr').first().textContent();
    expect(text).toContain(`${check.throughputPct!.toFixed(0)}% of ${first.overload!.baseline}`);
    expect(text).toContain(`${check.p99OverLittle!.toFixed(2)}×`);
    expect(check.littleMs).toBeCloseTo((1000 * first.connections!) / first.byTarget.ours!.rps!, 6);
    // Each run recorded its own check against the same server's baseline run of its repetition.
    for (const run of fixture.runs.filter((candidate) => candidate.kind.startsWith('overload'))) {
      expect(run.overload?.baseline).toBe(baselineScenarioId({ id: run.scenario, kind: run.kind }));
    }
  });

  it("keeps the seed's table: ours against the seed's FastAPI service on the seed's scenarios", async () => {
    const seeded = scenarios.filter((scenario) => scenario.ratio);
    expect(seeded.length).toBeGreaterThan(0);
    expect(await page.locator('table.seed tbody tr').count()).toBe(seeded.length);
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

  it('shows outcome shares for overload runs, and bars per server with ours ÷ each peer', async () => {
    expect(await count('svg.chart[data-chart="statuses"]')).toBe(scenarios.filter((scenario) => scenario.kind.startsWith('overload')).length);
    for (const chart of ['bars-rps', 'bars-ok-rps', 'bars-p99']) expect(await count(`svg.chart[data-chart="${chart}"] rect.bar`)).toBeGreaterThan(scenarios.length);
    const compared = scenarios.find((scenario) => scenario.ratios.minimal?.rps !== undefined && scenario.ratios.peer?.rps !== undefined)!;
    const format = (ratio: number) => `${ratio >= 10 ? ratio.toFixed(0) : ratio >= 1 ? ratio.toFixed(2) : ratio.toFixed(3)}×`;
    const [minimal, seed] = [format(compared.ratios.minimal!.rps!), format(compared.ratios.peer!.rps!)];
    await expect(page.locator('svg[data-chart="bars-rps"]').textContent()).resolves.toContain(`(ours/minimal ${minimal}, ours/seed ${seed})`);
    await expect(page.locator('table.summary').textContent()).resolves.toContain(`÷ seed ${seed}`);
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
