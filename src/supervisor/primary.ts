import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config.js';
import { connectionBudgetProblem, type ConnectionBudget } from './connection-budget.js';
import { heartbeatInterval, isWorkerMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { countRateLimitsForWorkers } from './rate-limit-store.js';

/**
 * The supervisor: Gunicorn's master on node:cluster. It keeps `workers` processes serving,
 * replaces those that die, kills those that hang, reloads them one by one without dropping a
 * request, scales on TTIN/TTOU and drains them all on shutdown.
 */

/** Workers that die before listening this many times in a row mean a broken build or config. */
const MAX_BOOT_FAILURES = 5;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** How long a worker may take to start listening before it counts as hung. */
const BOOT_TIMEOUT_MS = 60_000;

interface TrackedWorker {
  worker: Worker;
  pid: number;
  startedAt: number;
  lastHeartbeat: number;
  listening: boolean;
  /** Told to drain: its exit is expected and is not replaced. */
  retiring: boolean;
  killedForHang: boolean;
}

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
  private stopping = false;
  private bootFailures = 0;
  private lastBootError: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Reloads, recycles and scale-downs run one at a time, in order. */
  private rolling: Promise<unknown> = Promise.resolve();
  /** Collects every worker's metrics (prom-client's cluster support) for whichever worker is scraped. */
  private readonly aggregator = new AggregatorRegistry();

  constructor(private readonly options: SupervisorOptions) {
    this.log = options.logger.child({ role: 'supervisor' });
    this.target = options.config.workers;
  }

  start(): void {
    this.log.info({ event: 'supervisor-started', workers: this.target }, 'supervisor started');
    const { workerTimeoutMs } = this.options.config;
    this.watchdog = setInterval(() => this.killHungWorkers(), heartbeatInterval(workerTimeoutMs));
    // The workers' shared rate-limit count (idle unless they ask: a limit, and no Redis).
    countRateLimitsForWorkers();
    for (let index = 0; index < this.target; index++) this.fork();

    process.on('SIGTERM', () => void this.stop('SIGTERM'));
    process.on('SIGINT', () => void this.stop('SIGINT'));
    process.on('SIGQUIT', () => void this.stop('SIGQUIT'));
    process.on('SIGHUP', () => this.enqueue(() => this.reload()));
    process.on('SIGTTIN', () => this.scale(+1));
    process.on('SIGTTOU', () => this.scale(-1));
  }

  private fork(): TrackedWorker {
    const worker = cluster.fork(this.options.workerEnv);
    const now = Date.now();
    const entry: TrackedWorker = {
      worker,
      pid: worker.process.pid!,
      startedAt: now,
      lastHeartbeat: now,
      listening: false,
      retiring: false,
      killedForHang: false,
    };
    this.tracked.set(worker.id, entry);
    this.log.info({ event: 'worker-started', workerPid: entry.pid, workerId: worker.id }, 'worker started');

    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.onMessage(entry, message);
    });
    worker.on('listening', () => {
      entry.listening = true;
      entry.lastHeartbeat = Date.now();
      this.bootFailures = 0;
      this.log.info({ event: 'worker-listening', workerPid: entry.pid, workerId: worker.id }, 'worker listening');
    });
    worker.on('exit', (code, signal) => this.onExit(entry, code, signal));
    return entry;
  }

  private onMessage(entry: TrackedWorker, message: WorkerMessage): void {
    switch (message.type) {
      case 'heartbeat':
        entry.lastHeartbeat = Date.now();
        break;
      case 'boot-error':
        this.lastBootError = message.message;
        break;
      case 'retire':
        this.log.info({ event: 'worker-recycling', workerPid: entry.pid, reason: 'max-requests' }, 'worker reached max-requests');
        this.enqueue(() => this.replace(entry));
        break;
      case 'metrics-request':
        this.aggregator.clusterMetrics().then(
          (text) => this.send(entry, { type: 'metrics-response', id: message.id, text }),
          (error: Error) => this.send(entry, { type: 'metrics-response', id: message.id, error: error.message }),
        );
        break;
    }
  }

  private onExit(entry: TrackedWorker, code: number | null, signal: string | null): void {
    this.tracked.delete(entry.worker.id);
    const expected = entry.retiring || this.stopping;
    this.log[expected ? 'info' : 'error'](
      { event: 'worker-exited', workerPid: entry.pid, workerId: entry.worker.id, code, signal, expected },
      expected ? 'worker exited' : 'worker died',
    );
    if (expected) return;

    if (!entry.listening) {
      this.bootFailures++;
      if (this.bootFailures >= MAX_BOOT_FAILURES) {
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

  /** Forks until the workers that are not retiring number `target`. */
  private fillToTarget(replacedPid?: number): void {
    while (!this.stopping && this.active().length < this.target) {
      const fresh = this.fork();
      if (replacedPid !== undefined) {
        this.log.info({ event: 'worker-replaced', workerPid: replacedPid, replacementPid: fresh.pid }, 'worker replaced');
      }
    }
  }

  private active(): TrackedWorker[] {
    return [...this.tracked.values()].filter((entry) => !entry.retiring);
  }

  private killHungWorkers(): void {
    const now = Date.now();
    for (const entry of this.tracked.values()) {
      const silentFor = now - entry.lastHeartbeat;
      // Loading the code blocks a new worker's event loop for a while: a short --timeout must not
      // kill workers that are still booting (a boot that truly hangs is still caught).
      const limit = entry.listening ? this.options.config.workerTimeoutMs : Math.max(this.options.config.workerTimeoutMs, BOOT_TIMEOUT_MS);
      if (entry.retiring || entry.killedForHang || silentFor <= limit) continue;
      entry.killedForHang = true;
      this.log.error(
        { event: 'worker-hung', workerPid: entry.pid, workerId: entry.worker.id, silentForMs: silentFor, booting: !entry.listening },
        'worker missed its heartbeats: killing it',
      );
      entry.worker.process.kill('SIGKILL');
    }
  }

  private enqueue(step: () => Promise<unknown>): void {
    this.rolling = this.rolling.then(step).catch((error: unknown) => this.log.error({ err: error }, 'rolling step failed'));
  }

  /** SIGHUP: every worker, one at a time, is replaced by a fresh one (running the code now on disk). */
  private async reload(): Promise<void> {
    if (this.stopping) return;
    const old = this.active();
    this.log.info({ event: 'reload-began', workerPids: old.map((entry) => entry.pid) }, 'rolling reload began');
    let replaced = 0;
    for (const entry of old) {
      if (!(await this.replace(entry))) break;
      replaced++;
    }
    this.log.info({ event: 'reload-ended', replaced, workerPids: this.active().map((entry) => entry.pid) }, 'rolling reload ended');
  }

  /** Starts a new worker, waits until it listens, then drains the old one: capacity never drops. */
  private async replace(old: TrackedWorker): Promise<boolean> {
    if (this.stopping || !this.tracked.has(old.worker.id)) return false;
    const fresh = this.fork();
    const listening = await Promise.race([once(fresh.worker, 'listening').then(() => true), exitOf(fresh).then(() => false)]);
    if (!listening) {
      this.log.error({ event: 'replace-aborted', workerPid: old.pid }, 'the new worker did not start; keeping the old one');
      return false;
    }
    await this.retire(old);
    return true;
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
      const oldest = this.active().sort((a, b) => a.startedAt - b.startedAt)[0];
      if (oldest) this.enqueue(() => this.retire(oldest));
    }
  }

  /** Asks a worker to drain and exit; kills it if it is still there after the graceful timeout. */
  private async retire(entry: TrackedWorker): Promise<void> {
    if (!this.tracked.has(entry.worker.id)) return;
    entry.retiring = true;
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

  /** Graceful for TERM/INT (drain every worker), immediate for QUIT; then exit. */
  async stop(reason: string, exitCode = 0): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.watchdog);
    const immediate = reason === 'SIGQUIT';
    this.log.info({ event: 'supervisor-stopping', reason, workers: this.tracked.size }, 'supervisor stopping');

    const workers = [...this.tracked.values()];
    if (immediate) {
      for (const entry of workers) entry.worker.process.kill('SIGKILL');
      await Promise.all(workers.map((entry) => exitOf(entry)));
    } else {
      await Promise.all(workers.map((entry) => this.retire(entry)));
    }
    await this.options.onStopped();
    this.log.info({ event: 'supervisor-stopped', exitCode }, 'supervisor stopped');
    process.exit(exitCode);
  }
}

function exitOf(entry: TrackedWorker): Promise<unknown> {
  return entry.worker.isDead() ? Promise.resolve() : once(entry.worker, 'exit');
}
