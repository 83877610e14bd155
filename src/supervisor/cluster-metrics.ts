import { AggregatorRegistry } from 'prom-client';
import type { MetricsSnapshot } from '../metrics.js';

/**
 * Every worker's metrics, added up for GET /metrics.
 *
 * prom-client's own cluster support (AggregatorRegistry.clusterMetrics) adds up the workers alive
 * at the moment of a scrape, and waits up to 5 s for every one of them, booting ones included. So
 * a counter dropped whenever a worker exited (a recycle, a reload, a crash), which Prometheus
 * reads as a reset, and a scrape during a reload could wait and fail. Here:
 * - only workers that listen are asked, each for at most SNAPSHOT_TIMEOUT_MS; one that does not
 *   answer in time counts with its last snapshot;
 * - the counters and histograms of a worker that is gone are kept (its gauges, which described a
 *   process that no longer exists, are dropped): from its final snapshot when it exits
 *   gracefully, or from the last one a scrape saw when it was killed. Either is at least what
 *   earlier scrapes reported, so no counter ever goes down.
 * prom-client still does the adding up (AggregatorRegistry.aggregate) and the text format.
 */

const SNAPSHOT_TIMEOUT_MS = 2_000;

type Metric = MetricsSnapshot[number];
type Sample = Metric['values'][number] & { metricName?: string };

export interface ScrapeTarget {
  id: number;
  /** Asks the worker for a snapshot, answered with `received(id, requestId, …)`. */
  requestSnapshot(requestId: number): void;
}

interface PendingScrape {
  waitingFor: Set<number>;
  done: () => void;
}

export class ClusterMetrics {
  /** Each live worker's latest snapshot, by worker id. */
  private readonly latest = new Map<number, MetricsSnapshot>();
  /** The counters and histograms of workers that are gone, added up: metric name → sample key → sample. */
  private readonly departed = new Map<string, { metric: Metric; samples: Map<string, Sample> }>();
  private readonly pending = new Map<number, PendingScrape>();
  /** The highest value reported for each sample of a counter or histogram. */
  private readonly reported = new Map<string, number>();
  private lastRequestId = 0;

  /** Asks `targets` for their metrics, then adds up everything known. */
  async scrape(targets: ScrapeTarget[]): Promise<string> {
    const requestId = ++this.lastRequestId;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, SNAPSHOT_TIMEOUT_MS);
      const scrape: PendingScrape = { waitingFor: new Set(targets.map((target) => target.id)), done: finish };
      const pending = this.pending;
      function finish() {
        clearTimeout(timer);
        pending.delete(requestId);
        resolve();
      }
      this.pending.set(requestId, scrape);
      for (const target of targets) target.requestSnapshot(requestId);
      if (scrape.waitingFor.size === 0) finish();
    });
    return this.text();
  }

  /** A worker's snapshot: the answer to a scrape's request, or its final one (`requestId` undefined). */
  received(workerId: number, requestId: number | undefined, snapshot: MetricsSnapshot): void {
    // A worker answers in order, so this is at least as new as the snapshot it replaces.
    this.latest.set(workerId, snapshot);
    if (requestId !== undefined) this.answered(requestId, workerId);
  }

  /**
   * The worker is gone, and can send nothing more (its IPC channel closed after its last message):
   * keep its counters and histograms from the latest snapshot received.
   */
  departedWorker(workerId: number): void {
    const snapshot = this.latest.get(workerId);
    this.latest.delete(workerId);
    for (const requestId of [...this.pending.keys()]) this.answered(requestId, workerId);
    if (snapshot) this.keep(snapshot);
  }

  /** The Prometheus text of what is known now: the departed totals and each live worker's latest. */
  async text(): Promise<string> {
    const departed = [...this.departed.values()].map(({ metric, samples }) => ({ ...metric, values: [...samples.values()] }));
    const sums = await AggregatorRegistry.aggregate([departed, ...this.latest.values()]).getMetricsAsJSON();
    for (const metric of sums) {
      if (!adds(metric)) continue;
      for (const sample of metric.values as Sample[]) {
        // A worker's count moving from the live sum to the departed one adds the same numbers in
        // another order, and floating-point sums can then come out a hair lower: Prometheus would
        // read a reset. Never below what was reported.
        const key = `${metric.name} ${sampleKey(sample)}`;
        const reported = this.reported.get(key) ?? -Infinity;
        if (sample.value < reported) sample.value = reported;
        else this.reported.set(key, sample.value);
      }
    }
    return AggregatorRegistry.aggregate([sums]).metrics();
  }

  private answered(requestId: number, workerId: number): void {
    const scrape = this.pending.get(requestId);
    if (!scrape) return;
    scrape.waitingFor.delete(workerId);
    if (scrape.waitingFor.size === 0) scrape.done();
  }

  private keep(snapshot: MetricsSnapshot): void {
    for (const metric of snapshot) {
      if (!adds(metric)) continue;
      let kept = this.departed.get(metric.name);
      if (!kept) {
        kept = { metric: { ...metric, values: [] }, samples: new Map() };
        this.departed.set(metric.name, kept);
      }
      for (const sample of metric.values as Sample[]) {
        const key = sampleKey(sample);
        const total = kept.samples.get(key);
        if (total) total.value += sample.value;
        else kept.samples.set(key, { ...sample, labels: { ...sample.labels } });
      }
    }
  }
}

/** Only what adds up: counters and histograms summed across workers (never gauges). */
function adds(metric: Metric): boolean {
  const type = String(metric.type);
  return (type === 'counter' || type === 'histogram') && (metric.aggregator ?? 'sum') === 'sum';
}

/** The sample's name (`…_bucket`, `…_sum`) and labels, in an order that does not depend on the worker. */
function sampleKey(sample: Sample): string {
  const labels = Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([sample.metricName ?? '', labels]);
}
