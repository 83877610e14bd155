import cluster, { type Worker } from 'node:cluster';
import type { FastifyRateLimitStore } from '@fastify/rate-limit';
import { sendToSupervisor } from './messages.js';

/**
 * One rate-limit count for all the workers of an instance, kept by the supervisor: each worker
 * asks it over the cluster's IPC channel, so a client's limit holds whichever worker serves it.
 * (With REDIS_URL, workers count in Redis instead and never ask.) Written by hand because
 * @fastify/rate-limit ships stores for one process and for Redis only, and the cluster's IPC
 * channel is already there: no second server to run for one machine.
 */

/** A worker asks: count one more request of `key` in its window. */
interface HitMessage {
  type: 'rate-limit-hit';
  id: number;
  key: string;
  windowMs: number;
}

/** The supervisor answers: the requests counted in the key's window so far, and when it ends. */
interface CountMessage {
  type: 'rate-limit-count';
  id: number;
  current: number;
  ttl: number;
}

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

// ── The supervisor's side ─────────────────────────────────────────────────────────────────────

/** Beyond this many clients in one window, the oldest windows are forgotten early (as LocalStore's LRU does). */
const MAX_KEYS = 100_000;
/** How often ended windows are dropped, so that memory follows the clients of the last minute. */
const SWEEP_INTERVAL_MS = 10_000;

/**
 * Fixed windows, one per key, starting at its first request (as @fastify/rate-limit's own stores
 * count). A window that ended is replaced on the next request, and dropped by `expire`.
 */
export class FixedWindowCounter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(private readonly maxKeys = MAX_KEYS) {}

  hit(key: string, windowMs: number, now = Date.now()): { current: number; ttl: number } {
    let window = this.windows.get(key);
    if (window === undefined || window.resetAt <= now) {
      // Re-inserted at the end: the map stays in the order windows end (they all last as long).
      this.windows.delete(key);
      window = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
      if (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    }
    window.count++;
    return { current: window.count, ttl: window.resetAt - now };
  }

  /** Drops the windows that have ended. */
  expire(now = Date.now()): void {
    for (const [key, window] of this.windows) {
      if (window.resetAt <= now) this.windows.delete(key);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}

/**
 * In the supervisor: answers every worker's rate-limit hits from one counter. Costs nothing
 * while no worker asks (no limit, or Redis). Returns a function that stops answering.
 */
export function countRateLimitsForWorkers(counter = new FixedWindowCounter()): () => void {
  const answer = (worker: Worker, message: unknown) => {
    if ((message as { type?: unknown } | null)?.type !== 'rate-limit-hit') return;
    const { id, key, windowMs } = message as HitMessage;
    const { current, ttl } = counter.hit(key, windowMs);
    // A worker that has just died may still be connected: the send then fails, and the worker's
    // 'error' listener (the supervisor's, primary.ts) takes it.
    if (worker.isConnected()) worker.send({ type: 'rate-limit-count', id, current, ttl } satisfies CountMessage);
  };
  cluster.on('message', answer);
  const sweep = setInterval(() => counter.expire(), SWEEP_INTERVAL_MS).unref();
  return () => {
    cluster.off('message', answer);
    clearInterval(sweep);
  };
}

// ── A worker's side ───────────────────────────────────────────────────────────────────────────

/** An unanswered hit fails after this long (the limiter then lets the request through). */
const ANSWER_TIMEOUT_MS = 1_000;
const pending = new Map<number, { callback: Callback; sentAt: number }>();
let lastId = 0;
let answersHeard = false;

/** Registered once, on first use: a worker that never limits never listens. */
function hearAnswers(): void {
  if (answersHeard) return;
  answersHeard = true;
  process.on('message', (message: unknown) => {
    if ((message as { type?: unknown } | null)?.type !== 'rate-limit-count') return;
    const { id, current, ttl } = message as CountMessage;
    settle(id, null, { current, ttl });
  });
  // One timer for all the hits in flight, not one per request: they are in the order they were sent.
  setInterval(() => {
    const deadline = Date.now() - ANSWER_TIMEOUT_MS;
    for (const [id, request] of pending) {
      if (request.sentAt > deadline) break;
      pending.delete(id);
      request.callback(new Error(`the supervisor did not answer a rate-limit count within ${ANSWER_TIMEOUT_MS} ms`));
    }
  }, ANSWER_TIMEOUT_MS / 4).unref();
}

/** Ends the hit `id`, once: an answer to a hit that failed already is dropped. */
function settle(id: number, error: Error | null, result?: { current: number; ttl: number }): void {
  const request = pending.get(id);
  if (request === undefined) return;
  pending.delete(id);
  request.callback(error, result);
}

/**
 * The store @fastify/rate-limit uses in a worker (its `store` option): every increment is a round
 * trip to the supervisor.
 */
export class SupervisorRateLimitStore implements FastifyRateLimitStore {
  private keyPrefix = '';

  incr(key: string, callback: Callback, timeWindow = 60_000): void {
    hearAnswers();
    const id = ++lastId;
    pending.set(id, { callback, sentAt: Date.now() });
    // A supervisor that is gone will not answer: the hit fails at once.
    sendToSupervisor({ type: 'rate-limit-hit', id, key: this.keyPrefix + key, windowMs: timeWindow } satisfies HitMessage, (error) => {
      if (error) settle(id, error);
    });
  }

  /** A route with a limit of its own counts apart (as the plugin's RedisStore does). */
  child(routeOptions: unknown): FastifyRateLimitStore {
    const route = (routeOptions as { routeInfo?: { method?: string; url?: string } }).routeInfo ?? {};
    const child = new SupervisorRateLimitStore();
    child.keyPrefix = `${this.keyPrefix}${route.method ?? ''}${route.url ?? ''}-`;
    return child;
  }
}
