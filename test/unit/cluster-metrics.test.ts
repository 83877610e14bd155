import { describe, expect, it } from 'vitest';
import type { MetricsSnapshot } from '../../src/metrics.js';
import { ClusterMetrics } from '../../src/supervisor/cluster-metrics.js';

/** One worker's snapshot holding a single counter. */
function counter(value: number): MetricsSnapshot {
  return [{ name: 'work_seconds_total', help: 'work', type: 'counter', aggregator: 'sum', values: [{ value, labels: {} }] }] as unknown as MetricsSnapshot;
}

const valueIn = (text: string) => Number(/^work_seconds_total (\S+)$/m.exec(text)?.[1]);

describe('the cluster metrics', () => {
  it('never report a counter below a value already reported, even when floating-point sums change order', async () => {
    const metrics = new ClusterMetrics();
    metrics.received(1, undefined, counter(0.1));
    metrics.departedWorker(1);
    metrics.received(2, undefined, counter(0.1));
    metrics.received(3, undefined, counter(0.6));
    metrics.received(4, undefined, counter(0.1));
    const before = valueIn(await metrics.text());
    // Worker 3's count moves from the live sum to the departed one: 0.1 + 0.6 + 0.1 + 0.1 in another order.
    metrics.departedWorker(3);
    const after = valueIn(await metrics.text());
    expect(before).toBeGreaterThan(0.89);
    expect(after).toBeGreaterThanOrEqual(before);
  });
});
