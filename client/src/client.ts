import LinkHeader from 'http-link-header';
import createFetchClient, { type Client } from 'openapi-fetch';
import { errorFor, ProblemError, type ErrorCode } from './errors.js';
import type { components, operations, paths } from './schema.js';

export type Item = components['schemas']['Item'];
export type ItemCreate = components['schemas']['ItemCreate'];
export type ItemUpdate = components['schemas']['ItemUpdate'];
export type ListQuery = NonNullable<operations['listItems']['parameters']['query']>;

export interface ItemsClientOptions {
  /** Where the service answers, e.g. `http://localhost:8000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`: writes need it when the service runs with API_KEYS. */
  apiKey?: string;
  /** Retries of a creation answered 503 (see createItem). */
  retry?: { attempts?: number; maxDelayMs?: number };
  /** The fetch to use (the global one by default). */
  fetch?: (request: Request) => Promise<Response>;
}

export interface Page {
  items: Item[];
  /** The next page's URL, from the response's `Link: <…>; rel="next"`; undefined on the last page. */
  next: string | undefined;
}

/**
 * 503s that a creation may retry with the same Idempotency-Key: nothing was done (OVERLOADED,
 * DATABASE_UNAVAILABLE), or it may have been and the key makes the retry answer the original
 * (OUTCOME_UNKNOWN).
 */
export const RETRYABLE_CODES: readonly ErrorCode[] = ['OVERLOADED', 'DATABASE_UNAVAILABLE', 'OUTCOME_UNKNOWN'];

const DEFAULT_ATTEMPTS = 4;
const DEFAULT_MAX_DELAY_MS = 5_000;
/** The wait between attempts when a 503 says no Retry-After: 100 ms, doubling. */
const BACKOFF_MS = 100;

/** A typed client of the items API: each operation of its OpenAPI document, errors thrown as ProblemError. */
export function createItemsClient(options: ItemsClientOptions) {
  const http: Client<paths> = createFetchClient<paths>({
    baseUrl: options.baseUrl.replace(/\/$/, ''),
    headers: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
    ...(options.fetch && { fetch: options.fetch }),
  });
  const attempts = Math.max(1, options.retry?.attempts ?? DEFAULT_ATTEMPTS);
  const maxDelayMs = options.retry?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;

  /** The data of a success, or the error its failure stands for. */
  function dataOf<Data>(result: { data?: Data; error?: unknown; response: Response }): Data {
    if (result.response.ok) return result.data as Data;
    throw errorFor(result.response, result.error);
  }

  /** One page of items, by ascending id. */
  async function listItems(query: ListQuery = {}): Promise<Page> {
    const result = await http.GET('/items', { params: { query } });
    return { items: dataOf(result), next: nextLink(result.response) };
  }

  /** Every page, following each response's `Link: rel="next"` until there is none. */
  async function* pages(query: ListQuery = {}): AsyncGenerator<Page> {
    let page = await listItems(query);
    yield page;
    while (page.next !== undefined) {
      // The link's own query, sent to this client's /items: that holds behind a proxy serving the
      // API under a prefix too, which the link's absolute path would drop.
      const search = new URL(page.next, 'http://link.invalid').search.slice(1);
      const result = await http.GET('/items', { querySerializer: () => search });
      page = { items: dataOf(result), next: nextLink(result.response) };
      yield page;
    }
  }

  return {
    /** The underlying openapi-fetch client, for anything this one does not wrap. */
    http,
    listItems,
    pages,

    /** Every item, page after page (see pages). */
    async *items(query: ListQuery = {}): AsyncGenerator<Item> {
      for await (const page of pages(query)) yield* page.items;
    },

    async getItem(id: number): Promise<Item> {
      return dataOf(await http.GET('/items/{id}', { params: { path: { id } } }));
    },

    /**
     * Creates an item under an Idempotency-Key (a new UUID unless given; pass your own to retry a
     * creation later). A 503 with a code of RETRYABLE_CODES is retried with the same key, after the
     * Retry-After it names (at most `retry.maxDelayMs`), up to `retry.attempts` attempts in all:
     * however many attempts reach the service, one item is created.
     */
    async createItem(item: ItemCreate, { idempotencyKey = globalThis.crypto.randomUUID() }: { idempotencyKey?: string } = {}): Promise<Item> {
      for (let attempt = 1; ; attempt++) {
        const result = await http.POST('/items', { body: item, params: { header: { 'idempotency-key': idempotencyKey } } });
        try {
          return dataOf(result);
        } catch (error) {
          if (attempt >= attempts || !(error instanceof ProblemError && RETRYABLE_CODES.includes(error.code))) throw error;
          await sleep(retryDelayMs(result.response, attempt, maxDelayMs));
        }
      }
    },

    async updateItem(id: number, changes: ItemUpdate): Promise<Item> {
      return dataOf(await http.PATCH('/items/{id}', { params: { path: { id } }, body: changes }));
    },

    async deleteItem(id: number): Promise<void> {
      dataOf(await http.DELETE('/items/{id}', { params: { path: { id } } }));
    },

    /** Liveness: the process answers. */
    async health() {
      return dataOf(await http.GET('/healthz'));
    },

    /** Readiness: the database answers (a ProblemError NOT_READY otherwise). */
    async readiness() {
      return dataOf(await http.GET('/readyz'));
    },
  };
}

export type ItemsClient = ReturnType<typeof createItemsClient>;

function nextLink(response: Response): string | undefined {
  const header = response.headers.get('link');
  return header === null ? undefined : LinkHeader.parse(header).rel('next')[0]?.uri;
}

/** Retry-After in seconds or as an HTTP date, else a doubling backoff; never more than `maxDelayMs`. */
function retryDelayMs(response: Response, attempt: number, maxDelayMs: number): number {
  const retryAfter = response.headers.get('retry-after');
  let delay = BACKOFF_MS * 2 ** (attempt - 1);
  if (retryAfter !== null && /^\d+$/.test(retryAfter.trim())) delay = Number(retryAfter) * 1000;
  else if (retryAfter !== null && !Number.isNaN(Date.parse(retryAfter))) delay = Date.parse(retryAfter) - Date.now();
  return Math.min(Math.max(delay, 0), maxDelayMs);
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
