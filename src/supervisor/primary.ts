import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { ClusterMetrics } from './cluster-metrics.js';
import { connectionBudgetProblem, type ConnectionBudget } from './connection-budget.js';
import { Dispatcher } from './dispatcher.js';
import { heartbeatInterval, isWorkerMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { countRateLimitsForWorkers } from './rate-limit-store.js';

/**
 * The supervisor: Gunicorn's master on node:cluster. It owns the listening socket and hands each
 * connection to a worker (dispatcher.ts); it keeps `workers` processes serving, replaces those
 * that die, kills those that hang, reloads them one by one without dropping a request, scales on
 * TTIN/TTOU and drains them all on shutdown.
 */

/**
 * Workers that die before listening this many times in a row, while no worker serves, mean a
 * broken build or config.
 */
const MAX_BOOT_FAILURES = 5;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** How long a worker may take to start listening before it counts as hung. */
const BOOT_TIMEOUT_MS = 60_000;

/** Milliseconds on a monotonic clock: silence is never judged on a wall clock that can jump. */
const monotonicNow = () => performance.now();

interface TrackedWorker {
  worker: Worker;
  pid: number;
  startedAt: number;
  lastHeartbeat: number;
  /** Serving: the app is ready and takes connections. */
  listening: boolean;
  /** Told to drain: its exit is expected and is not replaced. */
  retiring: boolean;
  killedForHang: boolean;
  /** Started to take this worker's place (a reload step): one worker more until that one retires. */
  replacing?: TrackedWorker;
}

type ReplaceOutcome = 'replaced' | 'exited' | 'not-started';

export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  /** Variables every worker gets, such as the DATABASE_URL of the embedded database. */
  workerEnv: Record<string, string>;
  budget: ConnectionBudget;
  /** Called once all workers are gone, before the process exits. */
  onStopped: () => Promise<void>;
}

export class Supervisor {
  private readonly tracked = new Map<number, TrackedWorker>();
  private readonly log: Logger;
  private target: number;
  private stopping: 'graceful' | 'immediate' | undefined;
  private bootFailures = 0;
  /** Listening, with its workers forked. */
  private started = false;
  /** "Server listening" is said once, when the first worker serves. */
  private announced = false;
  private lastBootError: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Reloads, recycles and scale-downs run one at a time, in order. */
  private rolling: Promise<unknown> = Promise.resolve();
  private readonly metrics = new ClusterMetrics();
  private readonly dispatcher: Dispatcher;

  constructor(private readonly options: SupervisorOptions) {
    this.log = options.logger.child({ role: 'supervisor' });
    this.dispatcher = new Dispatcher(this.log);
    this.target = options.config.workers;
  }

  /** Listens on the port (a port taken stops the start here), then forks the workers. */
  async start(): Promise<void> {
    // Handled from the start (a signal nobody handles would kill the supervisor): stopping at
    // once, reloading and scaling only once there are workers.
    process.on('SIGTERM', () => void this.stop('SIGTERM'));
    process.on('SIGINT', () => void this.stop('SIGINT'));
    process.on('SIGQUIT', () => void this.stop('SIGQUIT'));
    process.on('SIGHUP', () => this.started && this.enqueue(() => this.reload()));
    process.on('SIGTTIN', () => this.started && this.scale(+1));
    process.on('SIGTTOU', () => this.started && this.scale(-1));
    try {
      await this.dispatcher.listen(this.options.config.host, this.options.config.port);
    } catch (error) {
      // A stop asked for meanwhile is already under way, and exits.
      if (this.stopping) return;
      throw error;
    }
    if (this.stopping) return;

    this.log.info({ event: 'supervisor-started', workers: this.target }, 'supervisor started');
    const interval = heartbeatInterval(this.options.config.workerTimeoutMs);
    let lastTick = monotonicNow();
    this.watchdog = setInterval(() => {
      const now = monotonicNow();
      // A late tick: the supervisor itself did not run meanwhile (Ctrl-Z then fg, SIGSTOP, a paused VM).
      const missedMs = Math.max(0, now - lastTick - interval);
      lastTick = now;
      // Judged after the event loop's next poll: a supervisor that did not run for a while fires
      // its timers before it reads the heartbeats that wait in the IPC channels.
      setImmediate(() => this.killHungWorkers(missedMs));
    }, interval);
    // The workers' shared rate-limit count (idle unless they ask: a limit, and no Redis).
    countRateLimitsForWorkers();
    this.fillToTarget();
    this.started = true;
  }

  private fork(replacing?: TrackedWorker): TrackedWorker {
    const worker = cluster.fork(this.options.workerEnv);
    const now = monotonicNow();
    const entry: TrackedWorker = {
      worker,
      pid: worker.process.pid!,
      startedAt: now,
      lastHeartbeat: now,
      listening: false,
      retiring: false,
      killedForHang: false,
      ...(replacing && { replacing }),
    };
    this.tracked.set(worker.id, entry);
    this.log.info({ event: 'worker-started', workerPid: entry.pid, workerId: worker.id }, 'worker started');

    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.onMessage(entry, message);
    });
    worker.on('exit', (code, signal) => this.onExit(entry, code, signal));
    // A message to a worker that has just died fails (EPIPE): the supervisor was still reading
    // what the worker sent last (rate-limit hits, a metrics request) and answered. Without a
    // listener that 'error' would crash the supervisor; the death itself is handled on 'exit'.
    worker.on('error', (error: NodeJS.ErrnoException) => {
      const sendFailed = error.syscall === 'write' || error.code === 'ERR_IPC_CHANNEL_CLOSED';
      this.log[sendFailed ? 'debug' : 'error']({ workerPid: entry.pid, workerId: worker.id, err: error }, 'worker process error');
    });
    worker.on('disconnect', () => this.channelClosed(worker));
    return entry;
  }

  private onMessage(entry: TrackedWorker, message: WorkerMessage): void {
    switch (message.type) {
      case 'connection-taken':
        this.dispatcher.taken(message.id);
        break;
      case 'connection-refused':
        this.dispatcher.refused(message.id);
        break;
      case 'stop-requested':
        // Already told to stop (a full stop, a retirement): told again, in case the request
        // crossed a SIGTERM meant for it while it was still booting. During a full stop that has
        // not reached it yet (the supervisor is still handing out what it accepted, as when a
        // service manager signals every process at once): nothing, its 'shutdown' comes after
        // those connections. Otherwise, as a recycle: its replacement first, then its drain.
        if (entry.retiring) {
          this.send(entry, { type: 'shutdown' });
          break;
        }
        if (this.stopping) {
          this.log.info({ event: 'worker-stop-requested', workerPid: entry.pid, workerId: entry.worker.id, deferred: true }, 'worker got a signal to stop: it stops with the others');
          break;
        }
        this.log.info({ event: 'worker-stop-requested', workerPid: entry.pid, workerId: entry.worker.id }, 'worker got a signal to stop: replacing it');
        this.enqueue(() => this.replace(entry));
        break;
      case 'serving':
        this.onServing(entry);
        break;
      case 'heartbeat':
        entry.lastHeartbeat = monotonicNow();
        break;
      case 'boot-error':
        this.lastBootError = message.message;
        break;
      case 'retire':
        if (entry.retiring) break;
        this.log.info({ event: 'worker-recycling', workerPid: entry.pid, reason: 'max-requests' }, 'worker reached max-requests');
        this.enqueue(() => this.replace(entry));
        break;
      case 'metrics-request':
        this.scrapeMetrics().then(
          (text) => this.send(entry, { type: 'metrics-response', id: message.id, text }),
          (error: Error) => this.send(entry, { type: 'metrics-response', id: message.id, error: error.message }),
        );
        break;
      case 'metrics-snapshot':
        this.metrics.received(entry.worker.id, message.id, message.metrics);
        break;
      case 'final-metrics':
        this.metrics.received(entry.worker.id, undefined, message.metrics);
        break;
    }
  }

  private onServing(entry: TrackedWorker): void {
    entry.listening = true;
    entry.lastHeartbeat = monotonicNow();
    this.bootFailures = 0;
    this.log.info({ event: 'worker-listening', workerPid: entry.pid, workerId: entry.worker.id }, 'worker listening');
    if (!entry.retiring && !this.stopping) this.dispatcher.add(entry.worker);
    entry.worker.emit('serving');
    if (!this.announced) {
      this.announced = true;
      // Fastify's words in a single process: what people and scripts look for.
      this.log.info(`Server listening at ${this.dispatcher.url}`);
    }
  }

  /**
   * Every message the worker sent has been read: its final metrics are in, and the connections it
   * did not take go to other workers. Called at most twice (on 'disconnect' and after 'exit').
   */
  private channelClosed(worker: Worker): void {
    this.metrics.departedWorker(worker.id);
    this.dispatcher.workerGone(worker);
  }

  /** Every worker's metrics; booting workers have served nothing and are not waited for. */
  private scrapeMetrics(): Promise<string> {
    const targets = [...this.tracked.values()]
      .filter((entry) => entry.listening && entry.worker.isConnected())
      .map((entry) => ({ id: entry.worker.id, requestSnapshot: (id: number) => this.send(entry, { type: 'metrics-snapshot-request', id }) }));
    return this.metrics.scrape(targets);
  }

  private onExit(entry: TrackedWorker, code: number | null, signal: string | null): void {
    this.tracked.delete(entry.worker.id);
    this.dispatcher.remove(entry.worker);
    // node:cluster's 'disconnect' never comes for a worker that died while a connection was being
    // handed to it (Node waits for an acknowledgement first). Its last messages were readable
    // before its exit was signalled, and are read in this same poll of the event loop: after it,
    // its channel is done with.
    setImmediate(() => this.channelClosed(entry.worker));
    const expected = entry.retiring || this.stopping !== undefined;
    this.log[expected ? 'info' : 'error'](
      { event: 'worker-exited', workerPid: entry.pid, workerId: entry.worker.id, code, signal, expected },
      expected ? 'worker exited' : 'worker died',
    );
    if (expected) return;

    if (!entry.listening) {
      this.bootFailures++;
      // While workers serve, a broken build stops nothing: a reload's or recycle's new worker
      // leaves the old one serving, and a dead worker's place is retried, backing off (5 s at most).
      if (this.bootFailures >= MAX_BOOT_FAILURES && !this.serving().some((other) => other.listening)) {
        const reason = this.lastBootError ?? `exit code ${code ?? signal}`;
        this.log.fatal(
          { event: 'crash-loop', failures: this.bootFailures, error: reason },
          `workers keep dying at boot (${this.bootFailures} in a row): ${reason}`,
        );
        void this.stop('crash-loop', 1);
        return;
      }
    }
    // A crash of a serving worker is replaced at once; repeated failures at boot back off.
    const delay = entry.listening ? 0 : Math.min(FIRST_BACKOFF_MS * 2 ** (this.bootFailures - 1), MAX_BACKOFF_MS);
    setTimeout(() => this.fillToTarget(entry.pid), delay);
  }

  /** Forks until the workers that hold a place number `target`. */
  private fillToTarget(replacedPid?: number): void {
    while (!this.stopping && this.serving().length < this.target) {
      const fresh = this.fork();
      if (replacedPid !== undefined) {
        this.log.info({ event: 'worker-replaced', workerPid: replacedPid, replacementPid: fresh.pid }, 'worker replaced');
      }
    }
  }

  /**
   * The workers that hold one of the `target` places: not retiring, and not a replacement whose
   * old worker still holds the place (when that one dies, the replacement takes it).
   */
  private serving(): TrackedWorker[] {
    return [...this.tracked.values()].filter((entry) => {
      if (entry.retiring) return false;
      const old = entry.replacing;
      return old === undefined || !this.tracked.has(old.worker.id) || old.retiring;
    });
  }

  /** `missedMs`: how long the supervisor did not run before this tick. */
  private killHungWorkers(missedMs: number): void {
    if (this.stopping) return;
    const now = monotonicNow();
    for (const entry of this.tracked.values()) {
      // Time the supervisor did not run counts as nobody's silence: after Ctrl-Z its workers were
      // stopped as well, and beat again only now. (A worker that hung meanwhile is caught that much later.)
      entry.lastHeartbeat = Math.min(now, entry.lastHeartbeat + missedMs);
      const silentFor = now - entry.lastHeartbeat;
      // Loading the code blocks a new worker's event loop for a while: a short --timeout must not
      // kill workers that are still booting (a boot that truly hangs is still caught).
      const limit = entry.listening ? this.options.config.workerTimeoutMs : Math.max(this.options.config.workerTimeoutMs, BOOT_TIMEOUT_MS);
      if (entry.retiring || entry.killedForHang || silentFor <= limit) continue;
      entry.killedForHang = true;
      this.log.error(
        { event: 'worker-hung', workerPid: entry.pid, workerId: entry.worker.id, silentForMs: Math.round(silentFor), booting: !entry.listening },
        'worker missed its heartbeats: killing it',
      );
      entry.worker.process.kill('SIGKILL');
    }
  }

  private enqueue(step: () => Promise<unknown>): void {
    this.rolling = this.rolling.then(step).catch((error: unknown) => this.log.error({ err: error }, 'rolling step failed'));
  }

  /**
   * SIGHUP: every worker serving when the signal came is replaced, one at a time, by a fresh one
   * (running the code now on disk). One that dies meanwhile was replaced by the crash path, and
   * the reload goes on with the rest. Only a new worker that cannot start stops the reload: the
   * old ones keep serving rather than crash-looping on a broken build.
   */
  private async reload(): Promise<void> {
    if (this.stopping) return;
    const old = this.serving();
    this.log.info({ event: 'reload-began', workerPids: old.map((entry) => entry.pid) }, 'rolling reload began');
    const replaced: number[] = [];
    const exited: number[] = [];
    for (const entry of old) {
      if (this.stopping) return;
      const outcome = this.tracked.has(entry.worker.id) ? await this.replace(entry) : 'exited';
      if (outcome === 'replaced') replaced.push(entry.pid);
      else if (outcome === 'exited') exited.push(entry.pid);
      else if (!this.stopping) {
        this.log.error(
          { event: 'reload-aborted', workerPid: entry.pid, error: this.lastBootError },
          'rolling reload aborted: a new worker did not start; the remaining old workers keep serving',
        );
        break;
      }
    }
    if (this.stopping) return;
    const notReplaced = old.filter((entry) => this.tracked.has(entry.worker.id) && !entry.retiring).map((entry) => entry.pid);
    this.log[notReplaced.length > 0 ? 'error' : 'info'](
      { event: 'reload-ended', replaced: replaced.length, exited, notReplaced, workerPids: this.serving().map((entry) => entry.pid) },
      `rolling reload ended: ${replaced.length} replaced, ${exited.length} exited and replaced by the crash path, ` +
        `${notReplaced.length} still on the old code`,
    );
  }

  /**
   * Starts a new worker, waits until it listens, then drains the old one: capacity never drops.
   * `exited`: the old worker died meanwhile, and the new one took its place.
   */
  private async replace(old: TrackedWorker): Promise<ReplaceOutcome> {
    // Gone, or already replaced (a recycle and a signal asked for the same worker).
    if (this.stopping || old.retiring || !this.tracked.has(old.worker.id)) return 'exited';
    const fresh = this.fork(old);
    const listening = await Promise.race([once(fresh.worker, 'serving').then(() => true), exitOf(fresh).then(() => false)]);
    // A stop began meanwhile: it drains both, and the old one keeps taking connections until then
    // (the new one gets none during a stop).
    if (this.stopping) return 'exited';
    if (!listening) {
      if (!this.tracked.has(old.worker.id)) return 'exited';
      this.log.error({ event: 'replace-aborted', workerPid: old.pid, newWorkerPid: fresh.pid }, 'the new worker did not start; keeping the old one');
      return 'not-started';
    }
    if (!this.tracked.has(old.worker.id)) {
      this.log.info({ event: 'worker-replaced', workerPid: old.pid, replacementPid: fresh.pid }, 'worker replaced');
      return 'exited';
    }
    await this.retire(old);
    return 'replaced';
  }

  private scale(change: 1 | -1): void {
    if (this.stopping) return;
    if (change > 0) {
      const problem = connectionBudgetProblem(this.options.budget, this.target + 1, this.options.config.dbPoolMax);
      if (problem) {
        this.log.warn({ event: 'scale-refused', workers: this.target }, problem);
        return;
      }
      this.target++;
      this.log.info({ event: 'scaled', workers: this.target }, 'one worker more');
      this.fillToTarget();
    } else if (this.target > 1) {
      this.target--;
      this.log.info({ event: 'scaled', workers: this.target }, 'one worker fewer');
      this.enqueue(() => this.retireBeyondTarget());
    }
  }

  /**
   * Drains the oldest workers until `target` serve. The victim is chosen when its turn comes, not
   * at the signal: a reload queued before may have replaced the worker that was oldest then.
   */
  private async retireBeyondTarget(): Promise<void> {
    while (!this.stopping && this.serving().length > this.target) {
      const [oldest] = this.serving().sort((a, b) => a.startedAt - b.startedAt);
      await this.retire(oldest!);
    }
  }

  /**
   * Asks a worker to drain and exit; kills it if it is still there after the graceful timeout.
   * It gets no connection after the request to stop, and every one before it arrives first.
   */
  private async retire(entry: TrackedWorker): Promise<void> {
    if (!this.tracked.has(entry.worker.id)) return;
    entry.retiring = true;
    this.dispatcher.remove(entry.worker);
    const exited = exitOf(entry);
    this.send(entry, { type: 'shutdown' });
    const killer = setTimeout(() => {
      this.log.warn({ event: 'worker-killed', workerPid: entry.pid, reason: 'graceful-timeout' }, 'worker did not drain in time');
      entry.worker.process.kill('SIGKILL');
    }, this.options.config.gracefulTimeoutMs + 1_000);
    await exited;
    clearTimeout(killer);
  }

  /**
   * A worker still booting may not listen for messages yet, and has no requests to finish: a
   * SIGTERM (which its handler drains, once installed) stops it either way.
   */
  private send(entry: TrackedWorker, message: PrimaryMessage): void {
    if (entry.listening && entry.worker.isConnected()) entry.worker.send(message);
    else if (message.type === 'shutdown') entry.worker.process.kill('SIGTERM');
  }

  /**
   * TERM/INT: graceful (close the listening socket, drain every worker); QUIT: immediate. QUIT,
   * or TERM/INT again, during a graceful stop makes it immediate, as in Gunicorn. Then exit.
   */
  async stop(reason: string, exitCode = 0): Promise<void> {
    const immediate = reason === 'SIGQUIT';
    if (this.stopping) {
      if (this.stopping === 'graceful' && reason !== 'crash-loop') this.stopNow(reason);
      return;
    }
    this.stopping = immediate ? 'immediate' : 'graceful';
    clearInterval(this.watchdog);
    // First, before any worker drains: new connections are refused, accepted ones are served.
    await this.dispatcher.close({ immediate });
    this.log.info({ event: 'supervisor-stopping', reason, immediate, workers: this.tracked.size }, 'supervisor stopping');

    const workers = [...this.tracked.values()];
    if (immediate) this.killAll();
    await Promise.all(workers.map((entry) => (immediate ? exitOf(entry) : this.retire(entry))));
    // Accepted while no worker served (all of them dead or starting): no one is left to answer.
    this.dispatcher.dropWaiting();
    await this.options.onStopped();
    this.log.info({ event: 'supervisor-stopped', exitCode }, 'supervisor stopped');
    process.exit(exitCode);
  }

  /** A graceful stop becomes immediate: the workers are killed, and the stop under way finishes. */
  private stopNow(reason: string): void {
    this.stopping = 'immediate';
    this.log.warn({ event: 'stop-hastened', reason, workers: this.tracked.size }, `${reason} during a graceful stop: killing the workers now`);
    this.killAll();
  }

  private killAll(): void {
    for (const entry of this.tracked.values()) entry.worker.process.kill('SIGKILL');
  }
}

function exitOf(entry: TrackedWorker): Promise<unknown> {
  return entry.worker.isDead() ? Promise.resolve() : once(entry.worker, 'exit');
}
