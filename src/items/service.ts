import { Batcher, Gate } from '../db/batcher.js';
import type { Database } from '../db/client.js';
import { serviceMetrics } from '../metrics.js';
import {
  deleteExpiredIdempotencyKeys,
  deleteItem,
  findItem,
  insertItems,
  listItems,
  updateItem,
  type Creation,
  type ItemPage,
  type NewItem,
} from './repository.js';
import type { ItemUpdate } from './schemas.js';

export interface ItemsServiceOptions {
  /** Database tasks at once: the pool size. */
  concurrency: number;
  /** Requests that may wait for the database, per kind of work; beyond, a fast 503. */
  maxQueued: number;
  maxWaitMs: number;
}

/** A page read once for every request that asked for it at the same time. */
export interface SharedPage extends ItemPage {
  /** The serialized page, made by the first request that sends it and reused by the others. */
  body?: string;
}

const MAX_INSERT_BATCH = 500;

/**
 * The items resource's work, shaped for many concurrent requests on few connections:
 *
 * - Creations arriving together are inserted by one statement, one commit, idempotency keys
 *   included (see `insertItems`).
 * - Identical page reads arriving together share one query, which starts after all of them
 *   arrived: each still sees every write committed before it was received (no cache, no staleness).
 * - Everything passes one gate, so the database's queue is bounded and overload is a fast 503.
 */
export function createItemsService(db: Database, options: ItemsServiceOptions) {
  const { maxQueued, maxWaitMs } = options;
  const gate = new Gate({ concurrency: options.concurrency, maxQueued, maxWaitMs });
  const { batchSize, watchDatabase } = serviceMetrics();
  watchDatabase(() => ({ inUse: gate.running, waiting: gate.waiting }));

  const creations = new Batcher<NewItem, Creation>({
    execute: (inputs) => gate.run(() => insertItems(db, inputs)),
    maxBatchSize: MAX_INSERT_BATCH,
    maxQueued,
    maxWaitMs,
    onBatch: (size) => batchSize.observe({ kind: 'create' }, size),
  });

  const pageReads = new Map<string, Batcher<null, SharedPage>>();
  function readPage(after: number, limit: number): Promise<SharedPage> {
    const key = `${after}:${limit}`;
    let reads = pageReads.get(key);
    if (!reads) {
      reads = new Batcher<null, SharedPage>({
        execute: async (inputs) => {
          const page: SharedPage = await gate.run(() => listItems(db, { after, limit }));
          return inputs.map(() => page);
        },
        maxBatchSize: maxQueued,
        maxQueued,
        maxWaitMs,
        onBatch: (size) => batchSize.observe({ kind: 'read' }, size),
      });
      pageReads.set(key, reads);
    }
    const batcher = reads;
    return batcher.submit(null).finally(() => {
      if (batcher.idle) pageReads.delete(key);
    });
  }

  return {
    list: ({ after = 0, limit }: { after?: number; limit: number }) => readPage(after, limit),
    create: (item: NewItem) => creations.submit(item),
    find: (id: number) => gate.run(() => findItem(db, id)),
    update: (id: number, changes: ItemUpdate) => gate.run(() => updateItem(db, id, changes)),
    remove: (id: number) => gate.run(() => deleteItem(db, id)),
    purgeExpiredIdempotencyKeys: () => gate.run(() => deleteExpiredIdempotencyKeys(db)),
  };
}

export type ItemsService = ReturnType<typeof createItemsService>;
