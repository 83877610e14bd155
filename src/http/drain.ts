import { Server as NetServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Stops taking connections and lets the open ones finish: each gets `Connection: close` on
     * its next response. Resolves when none is left, or after `timeoutMs` by cutting the rest.
     */
    drain(timeoutMs: number): Promise<void>;
  }
}

/**
 * A keep-alive connection that looks idle may carry a request already on its way; Node's
 * `server.close()` destroys such connections at once, and the client sees a reset. Closing after
 * a response that says `Connection: close` lets every client know before it sends again, so a
 * reload or shutdown under load fails no request.
 */
const IDLE_GRACE_MS = 1_000;

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

  app.decorate('drain', async function drainConnections(timeoutMs: number) {
    if (draining) return;
    draining = true;
    const deadline = Date.now() + timeoutMs;
    // net.Server's close, not http.Server's: stop accepting without destroying idle keep-alive
    // sockets. (A supervisor's worker does not listen: its connections come from the supervisor.)
    if (app.server.listening) NetServer.prototype.close.call(app.server);

    // Busy connections close after their response; a connection still idle after the grace
    // period is one that no client is using, and closing it races nobody.
    const idleTimer = setTimeout(() => app.server.closeIdleConnections(), Math.min(IDLE_GRACE_MS, timeoutMs));
    while (sockets.size > 0 && Date.now() < deadline) await sleep(25);
    clearTimeout(idleTimer);

    if (sockets.size > 0) {
      app.log.warn({ connections: sockets.size }, 'graceful timeout: closing connections with requests in flight');
      app.server.closeAllConnections();
    }
  });
});
