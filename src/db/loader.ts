import { Batcher, type BatcherOptions } from './batcher.js';

export interface LoaderOptions<Key, Value> extends Omit<BatcherOptions<Key, Value>, 'execute'> {
  /** Reads the distinct keys of one batch in one statement: one value per key, in the keys' order. */
  fetch: (keys: Key[]) => Promise<Value[]>;
  /** What makes two keys the same read (default: the key itself). */
  identify?: (key: Key) => unknown;
}

export type Load<Key, Value> = (key: Key) => Promise<Value>;

/**
 * Batched reads (see Batcher for when a batch starts, and why that keeps reads fresh): the keys
 * requested together are read by one statement, and identical keys in a batch are read once and
 * share the value.
 */
export function createLoader<Key, Value>({ fetch, identify = (key) => key, ...options }: LoaderOptions<Key, Value>): Load<Key, Value> {
  const batcher = new Batcher<Key, Value>({
    ...options,
    async execute(keys) {
      const slotOf = new Map<unknown, number>();
      const distinct: Key[] = [];
      const slots = keys.map((key) => {
        const identity = identify(key);
        let slot = slotOf.get(identity);
        if (slot === undefined) {
          slot = distinct.push(key) - 1;
          slotOf.set(identity, slot);
        }
        return slot;
      });
      const values = await fetch(distinct);
      return slots.map((slot) => values[slot]!);
    },
  });
  return (key) => batcher.submit(key);
}
