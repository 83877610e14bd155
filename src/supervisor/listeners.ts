import diagnosticsChannel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

/**
 * The listening sockets that node:cluster opens in the supervisor for its workers.
 *
 * In round-robin mode (the default everywhere but Windows) the supervisor accepts every connection
 * and hands it to a worker. node:cluster closes the listening socket only when the last worker
 * stops listening, and at that moment it also closes the connections it had accepted but not yet
 * handed out: clients that had sent a request see a reset. A full stop must go the other way
 * round: close the listening socket first (new connections are refused, which a client knows it
 * may retry), then let the workers take the connections already accepted and answer them.
 *
 * node:cluster has no API to close its socket on its own, so it is caught as it is bound, through
 * the `net.server.listen` tracing channel (published by the Node.js releases since mid-2024), and
 * its handle closed directly; node:cluster's own close of it later does nothing. Where the
 * channel is not published, nothing is caught and the workers close the socket as before.
 */

interface ListeningHandle {
  close(): void;
  /** Called by libuv with each accepted connection (node:cluster's round-robin sets it). */
  onconnection: (...args: unknown[]) => void;
}

/** At most this long accepting what waits in the kernel's queue before closing the socket. */
const ACCEPT_QUEUE_DRAIN_MS = 1_000;

export class Listeners {
  private readonly handles = new Set<ListeningHandle>();
  private readonly onListen = (message: unknown) => {
    // `_handle` is the bound socket; node:cluster takes it over right after this event.
    const handle = (message as { server?: { _handle?: ListeningHandle | null } }).server?._handle;
    if (handle) this.handles.add(handle);
  };

  constructor() {
    diagnosticsChannel.subscribe('tracing:net.server.listen:asyncEnd', this.onListen);
  }

  /**
   * Closes every listening socket caught; resolves with how many there were.
   *
   * Connections still waiting in the kernel's accept queue when a listening socket closes are
   * reset, although their clients may have sent a request. libuv accepts one connection per turn
   * of the event loop, so the queue is emptied first: turn after turn, until a turn accepts none
   * (then the queue was empty when it was polled), and the socket closes in that same turn.
   */
  async close(): Promise<number> {
    diagnosticsChannel.unsubscribe('tracing:net.server.listen:asyncEnd', this.onListen);
    let accepted = 0;
    for (const handle of this.handles) {
      const deliver = handle.onconnection;
      handle.onconnection = (...args: unknown[]) => {
        accepted++;
        deliver.apply(handle, args);
      };
    }
    const deadline = performance.now() + ACCEPT_QUEUE_DRAIN_MS;
    // Called from a signal handler, in a poll phase: the first immediate runs in this very turn,
    // each one after it in the next turn, after that turn's poll (which accepts one, if any waits).
    await nextTurn();
    let before: number;
    do {
      before = accepted;
      await nextTurn();
    } while (accepted !== before && performance.now() < deadline);
    const count = this.handles.size;
    for (const handle of this.handles) handle.close();
    this.handles.clear();
    return count;
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
