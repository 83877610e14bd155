import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A POST /items load for fault tests, like test/helpers/load.ts (keep-alive clients that never
 * retry), but keeping every request's fate: its unique name, when it started and ended, its status,
 * problem code and Retry-After, or its socket error. The fault tests need the times (how fast a
 * failure is) and the names (which stored rows were never acknowledged), which the shared load
 * generator does not keep.
 */

export interface WriteRecord {
  /** Unique in the run: `<prefix> <client>.<sequence>`; also sent as the request id. */
  name: string;
  requestId: string;
  startedAt: number;
  finishedAt: number;
  status?: number;
  /** The problem's `code` for a non-201 answer. */
  code?: string;
  retryAfter?: string;
  /** The id a 201 answered: what the service promised to have stored. */
  id?: number;
  /** A socket error (`ECONNRESET`, …), or `HUNG` when no answer came within `hangAfterMs`. */
  error?: string;
  /** True for an error on a fresh connection the service never took (a client may retry it). */
  notAccepted?: boolean;
}

export interface WriteLoadOptions {
  concurrency: number;
  /** Prefix of every name, so that a run's rows are told apart from any others. */
  prefix: string;
  /** A request unanswered after this long is destroyed and recorded as `HUNG`. */
  hangAfterMs: number;
  /** A client's pause after a failure, so that a fast-failing service is not spun on. */
  pauseAfterFailureMs?: number;
}

export interface WriteLoad {
  /** Every finished request so far, in the order they finished. */
  readonly records: readonly WriteRecord[];
  stop(): Promise<WriteRecord[]>;
}

export function startWriteLoad(baseUrl: string, options: WriteLoadOptions): WriteLoad {
  const { concurrency, prefix, hangAfterMs, pauseAfterFailureMs = 50 } = options;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const records: WriteRecord[] = [];
  let running = true;

  async function client(index: number): Promise<void> {
    for (let sequence = 0; running; sequence++) {
      const name = `${prefix} ${index}.${sequence}`;
      const record = await postItem(baseUrl, name, { agent, hangAfterMs });
      records.push(record);
      if (record.status !== 201) await sleep(pauseAfterFailureMs);
    }
  }

  const clients = Array.from({ length: concurrency }, (_, index) => client(index));
  return {
    records,
    async stop() {
      running = false;
      await Promise.all(clients);
      agent.destroy();
      return records;
    },
  };
}

/**
 * POSTs one item named `name` (also its request id) and records what became of it. Without an
 * agent, on a connection of its own, which the supervisor hands to the next worker in turn.
 */
export function postItem(baseUrl: string, name: string, { agent = false, hangAfterMs }: { agent?: Agent | false; hangAfterMs: number }): Promise<WriteRecord> {
  const record: WriteRecord = { name, requestId: name.replaceAll(' ', '-'), startedAt: Date.now(), finishedAt: 0 };
  return new Promise((resolve) => {
    const outgoing = request(`${baseUrl}/items`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'x-request-id': record.requestId },
    });
    outgoing.setTimeout(hangAfterMs, () => outgoing.destroy(Object.assign(new Error('no answer'), { code: 'HUNG' })));
    outgoing.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        record.finishedAt = Date.now();
        record.status = response.statusCode ?? 0;
        const retryAfter = response.headers['retry-after'];
        if (retryAfter !== undefined) record.retryAfter = retryAfter;
        const body = parse(text);
        if (record.status === 201) record.id = Number(body['id']);
        else if (typeof body['code'] === 'string') record.code = body['code'];
        resolve(record);
      });
      response.on('error', (error: NodeJS.ErrnoException) => {
        record.finishedAt = Date.now();
        record.error = error.code ?? error.name;
        resolve(record);
      });
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      if (record.status !== undefined) return;
      record.finishedAt = Date.now();
      record.error = error.code ?? error.name;
      record.notAccepted = record.error === 'ECONNREFUSED' || (record.error === 'ECONNRESET' && !outgoing.reusedSocket);
      resolve(record);
    });
    outgoing.end(JSON.stringify({ name: record.name }));
  });
}

function parse(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Counts of each kind of outcome: `201`, `503 DATABASE_UNAVAILABLE`, `error ECONNRESET`, … */
export function outcomes(records: readonly WriteRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of records) {
    const key = record.error !== undefined ? `error ${record.error}` : `${record.status}${record.code ? ` ${record.code}` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
