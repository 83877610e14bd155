import { Batcher } from '../db/batcher.js';
import type { Database } from '../db/client.js';
import { translateDatabaseError } from '../db/errors.js';
import { createLoader } from '../db/loader.js';
import { Semaphore } from '../db/semaphore.js';
import { serviceMetrics } from '../metrics.js';
import { claimIdentity, IdempotencyKeyReusedError } from './idempotency.js';
import {
  deleteExpiredIdempotencyKeys,
  deleteItem,
  findItems,
  insertItemsOrEach,
  listPages,
  updateItem,
  type InsertOutcome,
  type ItemPage,
  type ItemRow,
  type NewItem,
  type PageRequest,
  type StoredResponse,
} from './repository.js';
import type { ItemUpdate } from './schemas.js';

export interface ItemsServiceOptions {
  /** Database work at once: the pool's size. */
  poolSize: number;
  /** Requests that may wait for the database, per kind of work; beyond, a fast 503. */
  maxQueued: number;
  /** A request that waited this long for the database gets a 503. */
  maxWaitMs: number;
}

/** A creation's answer: a new item, or the response stored for its Idempotency-Key. */
export type Creation = { replayed: false; item: ItemRow } | { replayed: true; status: number; item: ItemRow };

const MAX_IDS_PER_READ = 1_000;
/** Pages are up to 1,000 rows each: a batch of them stays a modest result. */
const MAX_PAGES_PER_READ = 64;
const MAX_ITEMS_PER_INSERT = 500;

/**
 * The items resource's work, shaped for many concurrent requests on few connections. Every
 * database call holds one of the pool's permits (the semaphore); requests that arrive together
 * share statements (see Batcher, and why that never makes a read stale):
 *
 * - reads by id: one `id = ANY(…)` per batch;
 * - pages: one statement per batch, a page per distinct (after, limit);
 * - creations: one INSERT and one commit per batch, idempotency keys claimed in it.
 */
export function createItemsService(db: Database, options: ItemsServiceOptions) {
  const { maxQueued, maxWaitMs } = options;
  const semaphore = new Semaphore({ permits: options.poolSize, maxQueued, maxWaitMs });
  const { batchSize, watchDatabase } = serviceMetrics();
  const batching = (kind: string) => ({
    semaphore,
    maxInFlight: 1,
    maxQueued,
    maxWaitMs,
    onBatch: (size: number) => batchSize.observe({ kind }, size),
  });

  const readById = createLoader<number, ItemRow | undefined>({
    ...batching('find'),
    maxBatchSize: MAX_IDS_PER_READ,
    async fetch(ids) {
      const byId = new Map((await findItems(db, ids)).map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id));
    },
  });

  const readPage = createLoader<PageRequest, ItemPage>({
    ...batching('list'),
    maxBatchSize: MAX_PAGES_PER_READ,
    identify: ({ after, limit }) => `${after}:${limit}`,
    fetch: (requests) => listPages(db, requests),
  });

  const creations = new Batcher<NewItem, Creation>({
    ...batching('create'),
    maxBatchSize: MAX_ITEMS_PER_INSERT,
    execute: (inputs) => createAll(db, inputs),
  });

  watchDatabase(() => ({ inUse: semaphore.inUse, waiting: semaphore.waiting + creations.waiting }));

  const asRead = (error: unknown) => Promise.reject(translateDatabaseError(error, 'read'));
  const asWrite = (error: unknown) => Promise.reject(translateDatabaseError(error, 'write'));
  return {
    list: (request: PageRequest): Promise<ItemPage> => readPage(request).catch(asRead),
    find: (id: number): Promise<ItemRow | undefined> => readById(id).catch(asRead),
    create: (item: NewItem): Promise<Creation> => creations.submit(item).catch(asWrite),
    update: (id: number, changes: ItemUpdate) => semaphore.run(() => updateItem(db, id, changes)).catch(asWrite),
    remove: (id: number) => semaphore.run(() => deleteItem(db, id)).catch(asWrite),
    purgeExpiredIdempotencyKeys: () => semaphore.run(() => deleteExpiredIdempotencyKeys(db)).catch(asWrite),
  };
}

export type ItemsService = ReturnType<typeof createItemsService>;

/**
 * One batch of creations. A key may be claimed once per statement, so a retry that arrived in the
 * same batch as its original is answered from the original's outcome: the same stored response.
 */
async function createAll(db: Database, inputs: NewItem[]): Promise<(Creation | Error)[]> {
  const firstWithKey = new Map<string, number>();
  const claims: NewItem[] = [];
  const sources = inputs.map((input) => {
    if (!input.idempotency) return claims.push(input) - 1;
    const identity = claimIdentity(input.idempotency);
    let source = firstWithKey.get(identity);
    if (source === undefined) {
      source = claims.push(input) - 1;
      firstWithKey.set(identity, source);
    }
    return source;
  });
  const outcomes = await insertItemsOrEach(db, claims);
  return inputs.map((input, index) => {
    const source = sources[index]!;
    const outcome = outcomes[source]!;
    if (outcome instanceof Error) return translateDatabaseError(outcome, 'write');
    return creationFor(input, claims[source]!, outcome);
  });
}

/** What a creation answers, given the outcome of the claim it shares with `original` (itself, mostly). */
function creationFor(input: NewItem, original: NewItem, outcome: InsertOutcome): Creation | Error {
  if ('created' in outcome) {
    if (input === original) return { replayed: false, item: outcome.created };
    // A retry batched with its original: answered with the response just stored under the key.
    return replayOrReuse(input, { requestHash: original.idempotency!.requestHash, status: 201, item: outcome.created });
  }
  return replayOrReuse(input, outcome.stored);
}

function replayOrReuse(input: NewItem, stored: StoredResponse): Creation | Error {
  if (stored.requestHash !== input.idempotency!.requestHash) return new IdempotencyKeyReusedError(input.idempotency!.key);
  return { replayed: true, status: stored.status, item: stored.item };
}
