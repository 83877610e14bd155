import type { TimelinePoint } from './tools/load-result.js';
import type { Sample } from './sampler.js';

/**
 * Throughput over time for tools that print nothing while they run (wrk, hey): the bytes the load
 * generator read each second, scaled so that the timeline's mean equals the tool's own req/s. This
 * assumes responses of one run have about the same size, which holds for every scenario here except
 * a mix of short 503s and long 200s (the overload runs, which count per second in Lua instead).
 */
export function timelineFromBytes(samples: Sample[], rps: number): TimelinePoint[] {
  const intervals = samples.map((sample, index) => ({
    t: sample.t,
    seconds: sample.t - (index === 0 ? 0 : samples[index - 1]!.t),
    bytes: sample.bytesReceived,
  }));
  const totalSeconds = intervals.reduce((sum, interval) => sum + interval.seconds, 0);
  const totalBytes = intervals.reduce((sum, interval) => sum + interval.bytes, 0);
  if (totalBytes === 0 || totalSeconds === 0) return [];
  const requestsPerByte = (rps * totalSeconds) / totalBytes;
  return intervals.map((interval) => ({ t: interval.t, rps: Math.round((interval.bytes * requestsPerByte) / Math.max(interval.seconds, 1e-3)) }));
}
