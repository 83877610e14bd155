import { connect, type Socket } from 'node:net';

/**
 * HTTP/1.1 spoken by hand over a real socket, for what `app.inject` cannot express: raw bytes,
 * methods Node's parser refuses, header limits, dot segments sent as is (inject normalizes URLs
 * like a browser would), and clients that trickle their request.
 */

export interface RawExchange {
  /** Every byte the server wrote, as latin1 text so that no byte is lost or replaced. */
  received: string;
  /** True when the server closed the connection; false when our deadline ended it. */
  closedByServer: boolean;
  elapsedMs: number;
}

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Opens a connection, lets `talk` write to it, and collects what comes back until the server
 * closes the connection or `deadlineMs` passes (then we close it ourselves).
 */
export function rawExchange(port: number, talk: (socket: Socket) => void, deadlineMs = 5_000): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let closedByServer = true;
    const deadline = setTimeout(() => {
      closedByServer = false;
      socket.destroy();
    }, deadlineMs);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    // A reset after the server's answer is a close like any other for these tests.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(deadline);
      resolve({ received, closedByServer, elapsedMs: Date.now() - started });
    });
    socket.on('connect', () => talk(socket));
  });
}

/** Sends the bytes at once and waits for the server's answer and close. */
export function sendRaw(port: number, bytes: string | Buffer, deadlineMs?: number): Promise<RawExchange> {
  return rawExchange(port, (socket) => socket.write(bytes), deadlineMs);
}

/** A GET request line as a client with `--path-as-is` sends it: no normalization of the target. */
export function rawGet(target: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
}

/** Parses the first response in `received`; throws when there is none. */
export function parseRawResponse(received: string): RawResponse {
  const headerEnd = received.indexOf('\r\n\r\n');
  if (headerEnd < 0) throw new Error(`no HTTP response in ${JSON.stringify(received.slice(0, 200))}`);
  const [statusLine = '', ...headerLines] = received.slice(0, headerEnd).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rawBody = received.slice(headerEnd + 4);
  const chunked = headers['transfer-encoding'] === 'chunked';
  const body = chunked ? dechunk(rawBody) : rawBody.slice(0, Number(headers['content-length'] ?? rawBody.length));
  return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

function dechunk(text: string): string {
  let body = '';
  for (let offset = 0; ; ) {
    const lineEnd = text.indexOf('\r\n', offset);
    const size = parseInt(text.slice(offset, lineEnd), 16);
    if (!(size > 0)) return body;
    body += text.slice(lineEnd + 2, lineEnd + 2 + size);
    offset = lineEnd + 2 + size + 2;
  }
}
