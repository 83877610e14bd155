/** What the supervisor and its workers say to each other over the cluster's IPC channel. */

export type WorkerMessage =
  /** The event loop is free: sent on a timer, so a blocked loop goes silent. */
  | { type: 'heartbeat' }
  /** The worker could not start; it exits right after. */
  | { type: 'boot-error'; message: string }
  /** The worker served its max-requests and asks to be replaced. */
  | { type: 'retire' };

export type PrimaryMessage =
  /** Finish in-flight requests, close, exit 0. */
  { type: 'shutdown' };

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return type === 'heartbeat' || type === 'boot-error' || type === 'retire';
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return (message as { type?: unknown } | null)?.type === 'shutdown';
}

/** How often workers beat: often enough that the supervisor's timeout sees several per period. */
export function heartbeatInterval(workerTimeoutMs: number): number {
  return Math.max(50, Math.min(1_000, Math.floor(workerTimeoutMs / 4)));
}
