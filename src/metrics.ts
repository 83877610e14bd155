import client from 'prom-client';

/**
 * The process's Prometheus metrics, on prom-client's global registry: the registry whose snapshot
 * each worker sends its supervisor, which adds them up (supervisor/cluster-metrics.ts).
 */

export interface DatabaseLoad {
  inUse: number;
  waiting: number;
}

export interface ServiceMetrics {
  requests: client.Counter<'method' | 'route' | 'status'>;
  requestDuration: client.Histogram<'method' | 'route' | 'status'>;
  batchSize: client.Histogram<'kind'>;
  /** The database work of the app now serving in this process. */
  watchDatabase: (load: () => DatabaseLoad) => void;
}

let metrics: ServiceMetrics | undefined;

/** Created once per process, however many apps a test builds. */
export function serviceMetrics(): ServiceMetrics {
  if (metrics) return metrics;
  client.collectDefaultMetrics();
  let databaseLoad: () => DatabaseLoad = () => ({ inUse: 0, waiting: 0 });
  new client.Gauge({
    name: 'db_pool_in_use',
    help: 'Database tasks running now (at most DB_POOL_MAX per worker)',
    collect() {
      this.set(databaseLoad().inUse);
    },
  });
  new client.Gauge({
    name: 'db_pool_waiting',
    help: 'Database tasks waiting for a connection',
    collect() {
      this.set(databaseLoad().waiting);
    },
  });
  metrics = {
    requests: new client.Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
    }),
    requestDuration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to sending its response',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    batchSize: new client.Histogram({
      name: 'db_batch_size',
      help: 'Requests served by one batched statement, by kind (find, list, create)',
      labelNames: ['kind'],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    }),
    watchDatabase(load) {
      databaseLoad = load;
    },
  };
  return metrics;
}

/** This process's metrics in Prometheus text format (single-process mode and tests). */
export function localMetrics(): Promise<string> {
  return client.register.metrics();
}

/** A process's metrics as data (prom-client's JSON form), for the supervisor to add up. */
export type MetricsSnapshot = Awaited<ReturnType<typeof client.register.getMetricsAsJSON>>;

let previousSnapshot: Promise<unknown> = Promise.resolve();

/**
 * This process's metrics as data. Taken one at a time, so that each snapshot is at least as new
 * as the one sent before it: the supervisor keeps the latest, and counters must never go back.
 */
export function metricsSnapshot(): Promise<MetricsSnapshot> {
  const snapshot = previousSnapshot.then(() => client.register.getMetricsAsJSON());
  previousSnapshot = snapshot.catch(() => undefined);
  return snapshot;
}

export const METRICS_CONTENT_TYPE = client.register.contentType;
