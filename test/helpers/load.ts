import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A concurrent load generated inside a test, like wrk: `concurrency` clients, each sending its
 * next request as soon as the last one is answered, over keep-alive connections (or a new
 * connection for every request, `freshConnections`). Nothing is retried, so every failure is
 * counted.
 */

export interface LoadResult {
  /** Status code → count. */
  statuses: Record<number, number>;
  /**
   * Every other failure, by error code, marked with how far the request got (`ECONNRESET after
   * connecting`, `… after the request was sent`): once connected, the client has sent or is
   * sending its request, cannot know whether it was served, and must not simply retry a POST.
   */
  errors: Record<string, number>;
  /** Connections refused (ECONNREFUSED), before any byte was sent: a client retries these safely. */
  notAccepted: number;
  /** Ids returned by 201 responses: what the service promised to have stored. */
  createdIds: number[];
  total: number;
}

export interface LoadOptions {
  concurrency: number;
  method?: 'GET' | 'POST';
  path?: string;
  /** A new connection for every request (`Connection: close`), as from many short-lived clients. */
  freshConnections?: boolean;
  /** Give up on a request after this long without an answer (counted as `TIMEOUT …`); never by default. */
  requestTimeoutMs?: number;
}

export interface RunningLoad {
  /** Requests finished so far, answered or failed. */
  answered(): number;
  stop(): Promise<LoadResult>;
}

interface Answer {
  status: number;
  body: string;
}

export function startLoad(
  baseUrl: string,
  { concurrency, method = 'GET', path = '/items?limit=10', freshConnections = false, requestTimeoutMs }: LoadOptions,
): RunningLoad {
  const agent = freshConnections ? false : new Agent({ keepAlive: true, maxSockets: concurrency });
  const result: LoadResult = { statuses: {}, errors: {}, notAccepted: 0, createdIds: [], total: 0 };
  let running = true;

  function send(body: string | undefined): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const outgoing = request(`${baseUrl}${path}`, {
        method,
        agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      });
      outgoing.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        response.on('error', reject);
      });
      // 'connect': the service's kernel took the connection, and the request goes out at once;
      // 'finish': the whole request was handed to the operating system.
      let progress = '';
      outgoing.on('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => (progress ||= ' after connecting'));
      });
      outgoing.on('finish', () => (progress = ' after the request was sent'));
      if (requestTimeoutMs !== undefined) {
        outgoing.setTimeout(requestTimeoutMs, () => outgoing.destroy(Object.assign(new Error(`no answer in ${requestTimeoutMs} ms`), { code: 'TIMEOUT' })));
      }
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? error.name;
        reject(Object.assign(error, { notAccepted: code === 'ECONNREFUSED', label: `${code}${progress}` }));
      });
      outgoing.end(body);
    });
  }

  async function client(index: number): Promise<void> {
    for (let sequence = 0; running; sequence++) {
      try {
        const answer = await send(method === 'POST' ? JSON.stringify({ name: `load ${index}.${sequence}` }) : undefined);
        result.statuses[answer.status] = (result.statuses[answer.status] ?? 0) + 1;
        if (answer.status === 201) result.createdIds.push((JSON.parse(answer.body) as { id: number }).id);
      } catch (error) {
        const { notAccepted, label } = error as Error & { notAccepted: boolean; label: string };
        if (notAccepted) result.notAccepted++;
        else result.errors[label] = (result.errors[label] ?? 0) + 1;
        // A refused connection fails at once: pause so that a stopped server is not spun on.
        await sleep(10);
      }
      result.total++;
    }
  }

  const clients = Array.from({ length: concurrency }, (_, index) => client(index));
  return {
    answered: () => result.total,
    async stop() {
      running = false;
      await Promise.all(clients);
      if (agent) agent.destroy();
      return result;
    },
  };
}

/** Waits until `condition` holds, polling; throws with `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
