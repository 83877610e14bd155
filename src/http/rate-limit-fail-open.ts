import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor, RateLimitOptions } from '@fastify/rate-limit';
import type { FastifyBaseLogger } from 'fastify';

/**
 * When the shared count cannot be reached (Redis down or hung, the supervisor silent), requests
 * pass unlimited rather than fail: the limit protects the service, and an outage of its counter
 * must not become an outage of the service. The log says so, once per interval, not per request.
 */

const WARNING_INTERVAL_MS = 10_000;

export class CounterOutage {
  private failing = false;
  private lastWarningAt = -Infinity;
  private unlimitedSinceWarning = 0;

  constructor(
    private readonly log: FastifyBaseLogger,
    /** What counts, for the log: "Redis", "the supervisor". */
    private readonly counter: string,
    private readonly intervalMs = WARNING_INTERVAL_MS,
  ) {}

  /** The counter failed; `unlimited` when a request passed because of it. */
  failed(error: Error, unlimited: boolean): void {
    this.failing = true;
    if (unlimited) this.unlimitedSinceWarning++;
    const now = Date.now();
    if (now - this.lastWarningAt < this.intervalMs) return;
    this.log.warn(
      { reason: error.message, requestsUnlimited: this.unlimitedSinceWarning, counter: this.counter },
      `rate limit not enforced: ${this.counter} does not answer; requests pass unlimited until it does`,
    );
    this.lastWarningAt = now;
    this.unlimitedSinceWarning = 0;
  }

  recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.lastWarningAt = -Infinity;
    this.log.info({ requestsUnlimited: this.unlimitedSinceWarning, counter: this.counter }, `rate limit enforced again: ${this.counter} answers`);
    this.unlimitedSinceWarning = 0;
  }
}

type Callback = Parameters<FastifyRateLimitStore['incr']>[1];

/** A store as the plugin calls it: with the window and the limit too (its types leave them out). */
interface CountingStore extends FastifyRateLimitStore {
  incr(key: string, callback: Callback, timeWindow?: number, max?: number): void;
}

/** Passes every call to the store it wraps, reporting its failures and recoveries to `outage`. */
class ReportingStore implements CountingStore {
  constructor(
    private readonly inner: CountingStore,
    private readonly outage: CounterOutage,
  ) {}

  incr(key: string, callback: Callback, timeWindow?: number, max?: number): void {
    this.inner.incr(
      key,
      (error, result) => {
        if (error) this.outage.failed(error, true);
        else this.outage.recovered();
        callback(error, result);
      },
      timeWindow,
      max,
    );
  }

  child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
    return new ReportingStore(this.inner.child(routeOptions), this.outage);
  }
}

/**
 * A store constructor for @fastify/rate-limit's `store` option (it calls `new Store(options)`)
 * whose stores report to `outage`. Register the plugin with `skipOnError: true`, so that a failed
 * count lets the request through.
 */
export function reportingStore(create: (options: RateLimitOptions) => FastifyRateLimitStore, outage: CounterOutage): FastifyRateLimitStoreCtor {
  return class extends ReportingStore {
    constructor(options: FastifyRateLimitOptions) {
      // The plugin passes its settings (typed as an empty interface).
      super(create(options), outage);
    }
  };
}
