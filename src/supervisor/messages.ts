import type { MetricsSnapshot } from '../metrics.js';

/**
 * What the supervisor and its workers say to each other over the cluster's IPC channel (and, apart,
 * the rate limiter's counts: rate-limit-store.ts).
 */

export type WorkerMessage =
  /** The app is ready: the worker takes connections from now on. */
  | { type: 'serving' }
  /** The worker has the connection handed to it as `id` (before reading a byte of it). */
  | { type: 'connection-taken'; id: number }
  /** The worker is stopping and left the connection `id` untouched: another worker takes it. */
  | { type: 'connection-refused'; id: number }
  /** The worker got a signal to stop: the supervisor replaces it, then drains it. */
  | { type: 'stop-requested' }
  /** The event loop is free: sent on a timer, so a blocked loop goes silent. */
  | { type: 'heartbeat' }
  /** The worker could not start; it exits right after. */
  | { type: 'boot-error'; message: string }
  /** The worker served its max-requests and asks to be replaced. */
  | { type: 'retire' }
  /** GET /metrics: the worker asks for every worker's metrics, aggregated. */
  | { type: 'metrics-request'; id: number }
  /** This worker's metrics now, answering the supervisor's `metrics-snapshot-request`. */
  | { type: 'metrics-snapshot'; id: number; metrics: MetricsSnapshot }
  /** This worker's last metrics, sent after its last response and before it exits. */
  | { type: 'final-metrics'; metrics: MetricsSnapshot };

export type PrimaryMessage =
  /** A connection the supervisor accepted, sent with the message: serve it and acknowledge it. */
  | { type: 'connection'; id: number }
  /** Finish in-flight requests (those of every connection handed out before this), close, exit 0. */
  | { type: 'shutdown' }
  | { type: 'metrics-response'; id: number; text?: string; error?: string }
  | { type: 'metrics-snapshot-request'; id: number };

const WORKER_MESSAGES = new Set(['serving', 'connection-taken', 'connection-refused', 'stop-requested', 'heartbeat', 'boot-error', 'retire', 'metrics-request', 'metrics-snapshot', 'final-metrics']);
const PRIMARY_MESSAGES = new Set(['connection', 'shutdown', 'metrics-response', 'metrics-snapshot-request']);

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return WORKER_MESSAGES.has((message as { type?: unknown } | null)?.type as string);
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return PRIMARY_MESSAGES.has((message as { type?: unknown } | null)?.type as string);
}

/**
 * A worker's message to its supervisor; `done` gets null once it is in the channel, or the error
 * if it cannot be sent. Once the supervisor is gone (the channel closed, or its other end just
 * died) process.send would raise an 'error' event instead, and crash a worker in the middle of
 * its drain.
 */
export function sendToSupervisor(message: object, done: (error: Error | null) => void = ignoreOutcome): void {
  if (!process.send || !process.connected) {
    done(new Error('the supervisor is gone'));
    return;
  }
  process.send(message, undefined, undefined, done);
}

function ignoreOutcome(): void {
  // A message nobody waits for (a heartbeat, a snapshot): lost with the supervisor.
}

/** How often workers beat: often enough that the supervisor's timeout sees several per period. */
export function heartbeatInterval(workerTimeoutMs: number): number {
  return Math.max(50, Math.min(1_000, Math.floor(workerTimeoutMs / 4)));
}
