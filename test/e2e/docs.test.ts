import type { FastifyInstance } from 'fastify';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

// Chromium starts slowly on a 2-core machine, and each step waits for a real page to render.
const TIMEOUT = 60_000;

const ITEM_OPERATIONS = ['GET /items', 'POST /items', 'GET /items/{id}', 'PATCH /items/{id}', 'DELETE /items/{id}'];

/** Writes need this key: the page must send it once entered under Authorize. */
const API_KEY = 'docs-test-key';

let database: TestDatabase;
let app: FastifyInstance;
let browser: Browser | undefined;
let page: Page;
let origin: string;

/** What the page did besides rendering, asserted at the end so that every step is covered. */
const requestedUrls: string[] = [];
const failedRequests: string[] = [];
const errorResponses: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url, { API_KEYS: API_KEY });
  // A real socket, since the browser cannot reach app.inject.
  await app.listen({ host: '127.0.0.1', port: 0 });
  origin = originOf(app);

  browser = await launchChromium();
  page = await browser.newPage();
  recordActivity(page);
  await page.goto(`${origin}/docs`);
  // Swagger UI fetches the OpenAPI document after the load event, then renders the operations.
  await page.locator('.opblock').first().waitFor();
}, TIMEOUT);

afterAll(async () => {
  // The browser first, so that no keep-alive connection of its own is open while the server closes.
  await browser?.close();
  await app?.close();
  await database?.drop();
});

describe('the API documentation page at /docs', { timeout: TIMEOUT }, () => {
  it('lists every item operation', async () => {
    expect(await listedOperations(page)).toEqual(expect.arrayContaining(ITEM_OPERATIONS));
  });

  it('runs GET /items against the live API', async () => {
    const inserted = await app.inject({
      method: 'POST',
      url: '/items',
      payload: { name: 'from-the-browser-test' },
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(inserted.statusCode, inserted.body).toBe(201);

    const response = await execute(operation(page, 'GET', '/items'));

    expect(response.status).toBe('200');
    expect(response.body).toContain('from-the-browser-test');
  });

  it('takes an API key under Authorize, for the operations that need one', async () => {
    const locked = await page.locator('.opblock').evaluateAll((operations) =>
      operations
        .filter((element) => element.querySelector('.authorization__btn'))
        .map((element) => element.querySelector('.opblock-summary-method')?.textContent?.trim()),
    );
    expect(locked.sort()).toEqual(['DELETE', 'PATCH', 'POST']);

    await page.locator('.auth-wrapper .authorize').click();
    const dialog = page.locator('.modal-ux');
    await dialog.locator('input').fill(API_KEY);
    await dialog.getByRole('button', { name: 'Apply credentials' }).click();
    // Authorized: the dialog offers to log out instead.
    await dialog.locator('button', { hasText: 'Logout' }).waitFor();
    await dialog.locator('button', { hasText: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  // Needs the key entered above: without it, the service answers 401.
  it('runs POST /items with an edited body, and the item is stored', async () => {
    const create = operation(page, 'POST', '/items');
    const response = await execute(create, async () => {
      await create.locator('.body-param textarea').fill('{"name":"created-in-docs"}');
    });

    expect(response.status).toBe('201');
    const created = JSON.parse(response.body) as { id: number; name: string };
    expect(created.name).toBe('created-in-docs');
    const stored = await app.inject({ method: 'GET', url: `/items/${created.id}` });
    expect(stored.statusCode).toBe(200);
    expect(stored.json()).toMatchObject({ id: created.id, name: 'created-in-docs' });
  });

  it('loads everything from its own origin, without failures or console errors', () => {
    expect(requestedUrls.length).toBeGreaterThan(0);
    expect(requestedUrls.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(errorResponses).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});

function originOf(server: FastifyInstance): string {
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error(`Unexpected server address: ${address}`);
  return `http://127.0.0.1:${address.port}`;
}

function recordActivity(target: Page): void {
  target.on('request', (request) => requestedUrls.push(request.url()));
  target.on('requestfailed', (request) => failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`));
  target.on('response', (response) => {
    if (response.status() >= 400) errorResponses.push(`${response.status()} ${response.url()}`);
  });
  target.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  target.on('pageerror', (error) => consoleErrors.push(error.message));
}

/** "METHOD /path" for each operation, as a reader sees it. */
async function listedOperations(target: Page): Promise<string[]> {
  return target.locator('.opblock').evaluateAll((operations) =>
    operations.map((element) => {
      const method = element.querySelector('.opblock-summary-method')?.textContent ?? '';
      // Swagger UI puts zero-width spaces after slashes so that long paths can wrap.
      const path = (element.querySelector('.opblock-summary-path')?.textContent ?? '').replaceAll('\u200b', '');
      return `${method.trim()} ${path.trim()}`;
    }),
  );
}

function operation(target: Page, method: string, path: string): Locator {
  return target
    .locator(`.opblock-${method.toLowerCase()}`)
    .filter({ has: target.locator(`.opblock-summary-path[data-path="${path}"]`) });
}

/**
 * Expands the operation, switches it to "Try it out", lets the caller fill it in, executes it, and
 * returns the status and body that the page shows for the live response.
 */
async function execute(target: Locator, fillIn: () => Promise<void> = async () => {}) {
  await target.locator('.opblock-summary').click();
  await switchToTryItOut(target);
  await fillIn();
  await target.getByRole('button', { name: 'Execute' }).click();

  const liveResponse = target.locator('.live-responses-table .response');
  await liveResponse.waitFor();
  const status = (await liveResponse.locator('.response-col_status').textContent()) ?? '';
  const body = (await liveResponse.locator('.response-col_description pre').first().textContent()) ?? '';
  return { status: status.trim(), body };
}

/**
 * The docs plugin sets `tryItOutEnabled`, so operations open ready to execute (the button reads
 * "Cancel"); the click is needed only if that setting is dropped. Either way the page must get there.
 */
async function switchToTryItOut(target: Locator): Promise<void> {
  const toggle = target.locator('.try-out__btn');
  await toggle.waitFor();
  if ((await toggle.textContent())?.trim() === 'Try it out') await toggle.click();
  await target.getByRole('button', { name: 'Cancel' }).waitFor();
}
