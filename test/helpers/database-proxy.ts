import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between the service and PostgreSQL that a test steers, to put the service's queries
 * in a chosen order against other work: hold the server's answers (a query has run, but the
 * service has not heard back), or cut every connection (a query was sent, its answer never comes).
 *
 * It reads just enough of PostgreSQL's wire protocol to count messages by type in each direction:
 * the client's Sync or Query ends a request, the server's ReadyForQuery ends its answer.
 */
export class DatabaseProxy {
  private readonly connections = new Set<{ client: Socket; server: Socket }>();
  private holding: 'no' | 'from-next-result' | 'yes' = 'no';
  private readonly held: (() => void)[] = [];
  private readonly counts = { client: new Map<string, number>(), server: new Map<string, number>() };
  private readonly waiters: { check: () => boolean; resolve: () => void }[] = [];
  private cutAt: number | undefined;
  private inFlight = 0;
  private peak = 0;

  private constructor(
    private readonly listener: Server,
    /** The database URL through the proxy. */
    readonly url: string,
  ) {}

  static async start(databaseUrl: string): Promise<DatabaseProxy> {
    const target = new URL(databaseUrl);
    const listener = createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const { port } = listener.address() as { port: number };
    const through = new URL(databaseUrl);
    through.hostname = '127.0.0.1';
    through.port = String(port);
    const proxy = new DatabaseProxy(listener, through.href);
    listener.on('connection', (client) => proxy.accept(client, target.hostname, Number(target.port || 5432)));
    return proxy;
  }

  /** Messages of `type` (one letter, e.g. 'S' Sync, 'Q' Query, 'Z' ReadyForQuery) seen so far. */
  count(direction: 'client' | 'server', type: string): number {
    return this.counts[direction].get(type) ?? 0;
  }

  /** Resolves once `count(direction, type)` reaches `atLeast`; rejects after `timeoutMs`. */
  async waitFor(direction: 'client' | 'server', type: string, atLeast: number, timeoutMs = 5_000): Promise<void> {
    const check = () => this.count(direction, type) >= atLeast;
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${direction} sent ${this.count(direction, type)} '${type}', not ${atLeast}`)), timeoutMs);
      this.waiters.push({ check, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /**
   * From the next query result on (the first answer that carries a CommandComplete or an error:
   * the query has run), what PostgreSQL sends is kept here instead of reaching the service.
   * Answers before that (a statement's description, say) pass, so the query can be sent at all.
   */
  holdResults(): void {
    this.holding = 'from-next-result';
  }

  /** Delivers what was held, in order, and stops holding. */
  releaseResults(): void {
    this.holding = 'no';
    for (const deliver of this.held.splice(0)) deliver();
  }

  /**
   * The `nth` query the service sends from now on (counting Execute and simple Query messages)
   * never reaches PostgreSQL: every connection is cut instead, as when the server goes away.
   */
  cutAtQuery(nth: number): void {
    this.cutAt = this.count('client', 'E') + this.count('client', 'Q') + nth;
  }

  /** The most queries sent and not yet answered at one time since the last call (pipelined ones included). */
  takePeakInFlight(): number {
    const peak = this.peak;
    this.peak = this.inFlight;
    return peak;
  }

  /** Back to a plain proxy: held results delivered, no cut armed. */
  reset(): void {
    this.cutAt = undefined;
    this.releaseResults();
  }

  /** Cuts every open connection, both ways, dropping held answers: the service sees its connections die. */
  cutConnections(): void {
    this.held.length = 0;
    this.holding = 'no';
    for (const { client, server } of this.connections) {
      client.destroy();
      server.destroy();
    }
  }

  async close(): Promise<void> {
    this.cutConnections();
    this.listener.close();
    await once(this.listener, 'close');
  }

  private accept(client: Socket, host: string, port: number): void {
    const server = connect(port, host);
    const pair = { client, server };
    this.connections.add(pair);
    const clientMessages = new MessageCounter((type) => this.seen('client', type), true);
    const serverMessages = new MessageCounter((type) => this.seen('server', type), false);
    let awaitingAnswers = 0;
    client.on('data', (chunk: Buffer) => {
      const types = clientMessages.feed(chunk);
      const queries = this.count('client', 'E') + this.count('client', 'Q');
      if (this.cutAt !== undefined && queries >= this.cutAt) {
        this.cutAt = undefined;
        this.cutConnections();
        return;
      }
      const requests = types.filter((type) => type === 'S' || type === 'Q').length;
      awaitingAnswers += requests;
      this.inFlight += requests;
      this.peak = Math.max(this.peak, this.inFlight);
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      const types = serverMessages.feed(chunk);
      // ReadyForQuery ends an answer (and the login, which no request preceded).
      const answered = Math.min(awaitingAnswers, types.filter((type) => type === 'Z').length);
      awaitingAnswers -= answered;
      this.inFlight -= answered;
      if (this.holding === 'from-next-result' && (types.includes('C') || types.includes('E'))) this.holding = 'yes';
      const deliver = () => {
        if (!client.destroyed) client.write(chunk);
      };
      if (this.holding === 'yes') this.held.push(deliver);
      else deliver();
    });
    const close = () => {
      if (!this.connections.delete(pair)) return;
      this.inFlight -= awaitingAnswers;
      awaitingAnswers = 0;
      client.destroy();
      server.destroy();
    };
    client.on('close', close).on('error', close);
    server.on('close', close).on('error', close);
  }

  private seen(direction: 'client' | 'server', type: string): void {
    const counts = this.counts[direction];
    counts.set(type, (counts.get(type) ?? 0) + 1);
    for (const waiter of [...this.waiters]) {
      if (waiter.check()) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}

/**
 * Splits a byte stream into protocol messages: a type byte and a length that counts itself. The
 * client's first message (the startup packet) has no type byte.
 */
class MessageCounter {
  private buffer = Buffer.alloc(0);

  constructor(
    private readonly onMessage: (type: string) => void,
    private awaitingStartup: boolean,
  ) {}

  /** Reads a chunk; returns the types of the messages it completed. */
  feed(chunk: Buffer): string[] {
    const types: string[] = [];
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.awaitingStartup) {
        if (this.buffer.length < 4) return types;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) return types;
        this.buffer = this.buffer.subarray(length);
        this.awaitingStartup = false;
        continue;
      }
      if (this.buffer.length < 5) return types;
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return types;
      const type = String.fromCharCode(this.buffer[0]!);
      types.push(type);
      this.onMessage(type);
      this.buffer = this.buffer.subarray(1 + length);
    }
  }
}
