import type { Worker } from 'node:cluster';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { PrimaryMessage } from './messages.js';

/**
 * The supervisor's listening socket, and the hand-out of its connections to the workers in turn.
 *
 * node:cluster's own round robin loses a connection it is handing to a worker at the moment the
 * worker dies: the connection is neither answered nor closed, and its client waits until its own
 * timeout (the supervisor holds it open forever). Here every connection stays the supervisor's
 * until the worker says it has taken it, and one handed to a worker that dies first goes to
 * another: a worker's death loses only the requests it had already read.
 *
 * The worker takes a connection before reading a byte of it (worker.ts answers at once, in the
 * same turn), so a connection that was not acknowledged was never read, and is whole.
 */

interface HandedOut {
  socket: Socket;
  worker: Worker;
}

/** At most this long accepting what waits in the kernel's queue before closing the socket. */
const ACCEPT_QUEUE_DRAIN_MS = 1_000;

export class Dispatcher {
  /** The primary never reads: the worker that takes a connection reads it whole. */
  private readonly server = createServer({ pauseOnConnect: true }, (socket) => this.accepted(socket));
  /** Workers taking connections, in turn order. */
  private ready: Worker[] = [];
  private turn = 0;
  /** Accepted while no worker was ready. */
  private readonly waiting: Socket[] = [];
  private readonly handedOut = new Map<number, HandedOut>();
  private lastId = 0;
  private acceptedCount = 0;

  async listen(host: string, port: number): Promise<void> {
    this.server.listen({ host, port });
    await Promise.race([once(this.server, 'listening'), once(this.server, 'error').then(([error]) => Promise.reject(error as Error))]);
  }

  /** Where it listens, as a URL (an IPv6 address in brackets). */
  get url(): string {
    const { address, family, port } = this.server.address() as AddressInfo;
    return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /** A worker that serves: it gets connections from now on, and those waiting for one. */
  add(worker: Worker): void {
    if (this.ready.includes(worker)) return;
    this.ready.push(worker);
    for (const socket of this.waiting.splice(0)) this.handOut(socket);
  }

  /** A worker that drains or is gone: it gets no more connections. */
  remove(worker: Worker): void {
    this.ready = this.ready.filter((other) => other !== worker);
  }

  /**
   * A worker's IPC channel closed (it exited, or is about to): whatever it did not acknowledge
   * never reached it, and goes to another worker. Every message it sent before has been read.
   */
  workerGone(worker: Worker): void {
    this.remove(worker);
    for (const [id, entry] of this.handedOut) {
      if (entry.worker !== worker) continue;
      this.handedOut.delete(id);
      this.handOut(entry.socket);
    }
  }

  /** The worker has the connection: the supervisor's copy of it closes (the connection does not). */
  taken(id: number): void {
    const entry = this.handedOut.get(id);
    this.handedOut.delete(id);
    entry?.socket.destroy();
  }

  /**
   * Stops accepting. Connections still waiting in the kernel's accept queue when a listening
   * socket closes are reset, although their clients may have sent a request. libuv accepts one
   * connection per turn of the event loop, so the queue is emptied first: turn after turn, until
   * a turn accepts none (then the queue was empty when it was polled), and the socket closes in
   * that same turn. Every connection accepted is handed out before the workers hear they must
   * stop: the channel to a worker keeps the order of what is sent on it.
   */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    const deadline = performance.now() + ACCEPT_QUEUE_DRAIN_MS;
    // Called from a signal handler, in a poll phase: the first immediate runs in this very turn,
    // each one after it in the next turn, after that turn's poll (which accepts one, if any waits).
    await nextTurn();
    let before: number;
    do {
      before = this.acceptedCount;
      await nextTurn();
    } while (this.acceptedCount !== before && performance.now() < deadline);
    // Closes the listening socket now; its callback would wait for every connection to end.
    this.server.close();
  }

  /** Connections that no worker can take any more (all of them stopped): closed. */
  dropWaiting(): void {
    for (const socket of this.waiting.splice(0)) socket.destroy();
  }

  private accepted(socket: Socket): void {
    this.acceptedCount++;
    // A client that resets while waiting here must not crash the supervisor.
    socket.on('error', () => {});
    this.handOut(socket);
  }

  private handOut(socket: Socket): void {
    if (socket.destroyed) return;
    const worker = this.nextWorker();
    if (!worker) {
      this.waiting.push(socket);
      return;
    }
    const id = ++this.lastId;
    this.handedOut.set(id, { socket, worker });
    const message: PrimaryMessage = { type: 'connection', id };
    // keepOpen: the supervisor's copy stays open until the worker acknowledges it (`taken`).
    worker.send(message, socket, { keepOpen: true }, (error) => {
      // Not sent (the channel just closed): `workerGone` hands it to another worker.
      if (error) this.workerGone(worker);
    });
  }

  private nextWorker(): Worker | undefined {
    if (this.ready.length === 0) return undefined;
    this.turn = (this.turn + 1) % this.ready.length;
    return this.ready[this.turn];
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
