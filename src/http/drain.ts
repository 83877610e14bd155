import { Server as NetServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

export interface DrainOptions {
  /**
   * Go on taking connections until none has been open for QUIET_MS, then stop listening: the
   * supervisor has closed the listening socket itself, and still hands out the connections it
   * accepted before (closing this side at once would make it reset them).
   */
  keepListening?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Stops taking connections and lets the open ones finish: each gets `Connection: close` on
     * its next response. Resolves when none is left, or after `timeoutMs` by cutting the rest.
     */
    drain(timeoutMs: number, options?: DrainOptions): Promise<void>;
  }
}

/**
 * A keep-alive connection that looks idle may carry a request already on its way; Node's
 * `server.close()` destroys such connections at once, and the client sees a reset. Closing after
 * a response that says `Connection: close` lets every client know before it sends again, so a
 * reload or shutdown under load fails no request.
 */
const IDLE_GRACE_MS = 1_000;
/** With `keepListening`: how long no connection must be open before this worker stops listening. */
const QUIET_MS = 100;

export const drain = fastifyPlugin(async function drain(app: FastifyInstance) {
  let draining = false;
  const sockets = new Set<Socket>();

  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  // Callback style: no promise per request on the hot path.

  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });

  // net.Server's close, not http.Server's: stop accepting without destroying idle keep-alive sockets.
  const stopListening = () => {
    if (app.server.listening) NetServer.prototype.close.call(app.server);
  };

  app.decorate('drain', async function drainConnections(timeoutMs: number, { keepListening = false }: DrainOptions = {}) {
    if (draining) return;
    draining = true;
    const deadline = Date.now() + timeoutMs;
    if (!keepListening) stopListening();

    // Busy connections close after their response; a connection still idle after the grace
    // period is one that no client is using, and closing it races nobody.
    const idleTimer = setTimeout(() => app.server.closeIdleConnections(), Math.min(IDLE_GRACE_MS, timeoutMs));
    let quietSince: number | undefined;
    while (Date.now() < deadline) {
      if (sockets.size > 0) quietSince = undefined;
      else if (!keepListening || Date.now() - (quietSince ??= Date.now()) >= QUIET_MS) break;
      await sleep(25);
    }
    clearTimeout(idleTimer);
    stopListening();

    if (sockets.size > 0) {
      app.log.warn({ connections: sockets.size }, 'graceful timeout: closing connections with requests in flight');
      app.server.closeAllConnections();
    }
  });
});
