import type { Worker } from 'node:cluster';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { PrimaryMessage } from './messages.js';

/**
 * The supervisor's listening socket, and the hand-out of its connections to the workers in turn.
 *
 * node:cluster's own round robin loses a connection it is handing to a worker at the moment the
 * worker dies: the connection is neither answered nor closed, and its client waits until its own
 * timeout (the supervisor holds it open forever). Here every connection stays the supervisor's
 * until a worker says it has taken it, and one handed to a worker that dies first, or that has
 * begun to stop, goes to another: a worker's death loses only the requests it had already read.
 *
 * The worker answers as it receives a connection, in the same turn, before reading a byte of it
 * (worker.ts): a connection it did not take was never read, and is whole.
 *
 * As in node:cluster, a worker gets its next connection only once it has answered for the last
 * one: a worker whose event loop is stuck holds one connection, not a share of all of them, until
 * the watchdog replaces it.
 */

interface HandedOut {
  socket: Socket;
  worker: Worker;
}

/** At most this long accepting what waits in the kernel's queue before closing the socket. */
const ACCEPT_QUEUE_DRAIN_MS = 1_000;

export class Dispatcher {
  private readonly servers: Server[] = [];
  /** Workers taking connections, in turn order. */
  private ready: Worker[] = [];
  private turn = 0;
  /** Accepted, and not handed to a worker yet. */
  private readonly waiting: Socket[] = [];
  private readonly handedOut = new Map<number, HandedOut>();
  private lastId = 0;
  private acceptedCount = 0;

  constructor(private readonly log: Logger) {}

  /**
   * Listens on `host` and `port`. As Fastify does, `localhost` is every address it resolves to
   * (127.0.0.1 and ::1 where both exist); any other name is its first address.
   */
  async listen(host: string, port: number): Promise<void> {
    const addresses = host === 'localhost' ? [...new Set((await lookup(host, { all: true })).map(({ address }) => address))] : [host];
    for (const [index, address] of addresses.entries()) {
      // The primary never reads: the worker that takes a connection reads it whole.
      const server = createServer({ pauseOnConnect: true }, (socket) => this.accepted(socket));
      try {
        server.listen({ host: address, port });
        await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
        this.servers.push(server);
        // An accept that fails (out of file descriptors, say) is retried by libuv: logged, never fatal.
        server.on('error', (error) => this.log.error({ err: error }, 'accepting a connection failed'));
      } catch (error) {
        // The first address must be served; a further one of `localhost` may not exist here.
        if (index === 0) throw error;
      }
    }
  }

  /** Where it listens, as a URL (an IPv6 address in brackets). */
  get url(): string {
    const { address, family, port } = this.servers[0]!.address() as AddressInfo;
    return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /** A worker that serves: it gets connections from now on. */
  add(worker: Worker): void {
    if (!this.ready.includes(worker)) this.ready.push(worker);
    this.handOutWaiting();
  }

  /** A worker that drains, or is gone: it gets no more connections. */
  remove(worker: Worker): void {
    this.ready = this.ready.filter((other) => other !== worker);
  }

  /**
   * A worker's IPC channel closed: every message it sent before has been read, so whatever it
   * did not take never reached it, and goes to another worker.
   */
  workerGone(worker: Worker): void {
    this.remove(worker);
    for (const [id, entry] of this.handedOut) {
      if (entry.worker !== worker) continue;
      this.handedOut.delete(id);
      this.waiting.unshift(entry.socket);
    }
    this.handOutWaiting();
  }

  /** The worker has the connection: the supervisor's copy of it closes (the connection does not). */
  taken(id: number): void {
    const entry = this.handedOut.get(id);
    this.handedOut.delete(id);
    entry?.socket.destroy();
    this.handOutWaiting();
  }

  /** The worker is stopping and did not take the connection: another worker gets it, and it no more. */
  refused(id: number): void {
    const entry = this.handedOut.get(id);
    if (!entry) return;
    this.handedOut.delete(id);
    this.remove(entry.worker);
    this.waiting.unshift(entry.socket);
    this.handOutWaiting();
  }

  /**
   * Stops accepting, then hands every accepted connection to a worker, before the workers hear
   * they must stop (the channel to a worker keeps the order of what is sent on it).
   *
   * Connections still waiting in the kernel's accept queue when a listening socket closes are
   * reset, although their clients may have sent a request. libuv accepts one connection per turn
   * of the event loop, so the queue is emptied first: turn after turn, until a turn accepts none
   * (then the queue was empty when it was polled), and the socket closes in that same turn; under
   * a steady stream of new connections, after ACCEPT_QUEUE_DRAIN_MS (then what still waits is
   * reset). A handshake that completes between that poll and the close is the kernel's to reset,
   * as for any server that closes a listening socket. `immediate`: closes at once.
   */
  async close({ immediate = false } = {}): Promise<void> {
    if (this.servers.length === 0) return;
    if (!immediate) {
      // Called from a signal handler, in a poll phase: the first immediate runs in this very turn,
      // each one after it in the next turn, after that turn's poll (which accepts one, if any waits).
      await nextTurn();
      // Counted from the first turn: a supervisor kept from running meanwhile has not drained yet.
      const deadline = performance.now() + ACCEPT_QUEUE_DRAIN_MS;
      let before: number;
      do {
        before = this.acceptedCount;
        await nextTurn();
      } while (this.acceptedCount !== before && performance.now() < deadline);
    }
    // Closes the listening sockets now; the callback would wait for every connection to end.
    for (const server of this.servers.splice(0)) server.close();
    this.log.info(
      { event: 'listening-socket-closed', acceptedConnections: this.acceptedCount, waiting: this.waiting.length + this.handedOut.size, immediate },
      immediate ? 'listening socket closed' : 'listening socket closed: new connections are refused; those accepted are served',
    );
    if (!immediate) this.handOutWaiting({ oneAtATime: false });
  }

  /** Connections that no worker can take any more (none serves): closed. */
  dropWaiting(): void {
    for (const socket of this.waiting.splice(0)) socket.destroy();
  }

  private accepted(socket: Socket): void {
    this.acceptedCount++;
    // A client that resets while waiting here must not crash the supervisor.
    socket.on('error', () => {});
    this.waiting.push(socket);
    this.handOutWaiting();
  }

  /** `oneAtATime`: only to workers that have taken the last connection handed to them. */
  private handOutWaiting({ oneAtATime = true } = {}): void {
    while (this.waiting.length > 0) {
      const worker = this.nextWorker(oneAtATime);
      if (!worker) return;
      const socket = this.waiting.shift()!;
      if (socket.destroyed) continue;
      const id = ++this.lastId;
      this.handedOut.set(id, { socket, worker });
      const message: PrimaryMessage = { type: 'connection', id };
      // keepOpen: the supervisor's copy stays open until the worker has taken it (`taken`).
      // A send that fails (the channel just closed) is handled as the closed channel: `workerGone`.
      worker.send(message, socket, { keepOpen: true }, (error) => {
        if (error) this.workerGone(worker);
      });
    }
  }

  private nextWorker(oneAtATime: boolean): Worker | undefined {
    for (let tried = 0; tried < this.ready.length; tried++) {
      this.turn = (this.turn + 1) % this.ready.length;
      const worker = this.ready[this.turn]!;
      if (!oneAtATime || !this.isHolding(worker)) return worker;
    }
    return undefined;
  }

  private isHolding(worker: Worker): boolean {
    for (const entry of this.handedOut.values()) if (entry.worker === worker) return true;
    return false;
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
