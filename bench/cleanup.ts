/**
 * Everything the bench starts (PostgreSQL, servers, load generators, the partial results file)
 * registers how to undo it here, so that a normal end, a failure, Ctrl-C and SIGTERM all leave the
 * machine as it was. Actions run newest first: a load generator stops before its server, a server
 * before its database.
 */
export class Cleanup {
  private readonly actions: Array<{ name: string; run: () => Promise<void> | void }> = [];
  private running: Promise<void> | undefined;
  private signals = 0;

  /** Registers an action; the returned function unregisters it (when it was undone already). */
  add(name: string, run: () => Promise<void> | void): () => void {
    const action = { name, run };
    this.actions.push(action);
    return () => {
      const index = this.actions.indexOf(action);
      if (index >= 0) this.actions.splice(index, 1);
    };
  }

  get interrupted(): boolean {
    return this.signals > 0;
  }

  /** Runs every action once, newest first; a failing action is reported and the rest still run. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      while (this.actions.length > 0) {
        const action = this.actions.pop()!;
        try {
          await action.run();
        } catch (error) {
          console.error(`cleanup: ${action.name} failed:`, error);
        }
      }
    })();
    return this.running;
  }

  /**
   * Ctrl-C, SIGTERM and SIGHUP clean up, then exit with 128 + the signal's number. A second signal
   * while cleaning up does not cut the cleanup short (that would leave servers behind); a third does.
   */
  installSignalHandlers(): void {
    const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
    for (const [signal, number] of Object.entries(numbers) as Array<[NodeJS.Signals, number]>) {
      process.on(signal, () => {
        this.signals += 1;
        if (this.signals === 1) {
          console.error(`\n${signal}: stopping every process the bench started…`);
          void this.runAll().finally(() => process.exit(128 + number));
        } else if (this.signals === 2) {
          console.error(`${signal}: still cleaning up (send it once more to exit at once, leaving processes behind)`);
        } else {
          process.exit(128 + number);
        }
      });
    }
  }
}
