/**
 * The process's signals, owned by the long-running commands (`daemon`, `demo`). Listeners
 * go in before anything slow starts and stay until the command is done, so a signal is never
 * met by Node's default action (which ends the process with 128+n and leaves children and
 * temporary folders behind): SIGINT and SIGTERM ask for a stop, SIGHUP for a reload.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM';
export type HandledSignal = StopSignal | 'SIGHUP';

const HANDLED: readonly HandledSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export class ProcessSignals {
  readonly #queue: HandledSignal[] = [];
  #waiter: ((s: HandledSignal) => void) | undefined;
  readonly #stop = new AbortController();
  readonly #listeners: [HandledSignal, () => void][];

  constructor() {
    this.#listeners = HANDLED.map((sig) => {
      const fn = () => this.#deliver(sig);
      process.on(sig, fn);
      return [sig, fn];
    });
  }

  /** Aborted by the first SIGINT or SIGTERM: long work (building the sandbox) watches it. */
  get stopRequested(): AbortSignal {
    return this.#stop.signal;
  }

  /** The stop signal received, if any. */
  get stoppedBy(): StopSignal | undefined {
    return this.#stop.signal.aborted ? (this.#stop.signal.reason as StopSignal) : undefined;
  }

  /** The next signal, in arrival order (a stop is always delivered, even after reloads queued before it). */
  next(): Promise<HandledSignal> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /** Removes the listeners (Node's defaults apply again). */
  dispose(): void {
    for (const [sig, fn] of this.#listeners) process.off(sig, fn);
  }

  #deliver(sig: HandledSignal): void {
    if (sig !== 'SIGHUP' && !this.#stop.signal.aborted) this.#stop.abort(sig);
    // Repeated reload requests while one is waiting collapse into one.
    if (sig === 'SIGHUP' && this.#queue.includes('SIGHUP')) return;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w(sig);
    } else this.#queue.push(sig);
  }
}
