import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A concurrent load generated inside a test, like wrk: `concurrency` clients, each sending its
 * next request as soon as the last one is answered, over keep-alive connections. Nothing is
 * retried, so every failure is counted.
 */

export interface LoadResult {
  /** Status code → count. */
  statuses: Record<number, number>;
  /** Requests lost on an established connection, or any other error, by code → count. */
  errors: Record<string, number>;
  /**
   * Connections the service never took: refused, or reset before a first response (a listener
   * closing with connections in its queue). A client retries these safely.
   */
  notAccepted: number;
  /** Ids returned by 201 responses: what the service promised to have stored. */
  createdIds: number[];
  total: number;
}

export interface LoadOptions {
  concurrency: number;
  method?: 'GET' | 'POST';
  path?: string;
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

export function startLoad(baseUrl: string, { concurrency, method = 'GET', path = '/items?limit=10' }: LoadOptions): RunningLoad {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
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
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? error.name;
        const notAccepted = code === 'ECONNREFUSED' || (code === 'ECONNRESET' && !outgoing.reusedSocket);
        reject(Object.assign(error, { notAccepted }));
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
        const { code, name, notAccepted } = error as NodeJS.ErrnoException & { notAccepted: boolean };
        if (notAccepted) result.notAccepted++;
        else result.errors[code ?? name] = (result.errors[code ?? name] ?? 0) + 1;
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
      agent.destroy();
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
