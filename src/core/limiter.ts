/**
 * Bounded, fair concurrency across keys (a fleet's deployments): at most `total` tasks run at
 * once, at most `perKey` of them for one key, and a freed slot goes to the waiting key running
 * the fewest tasks (of equals, in turn): a deployment with many queued or slow checks never
 * starves the others, and one whose checks hang until their timeout holds at most `perKey`.
 */
export class FairLimiter {
  #active = 0;
  readonly #activeBy = new Map<string, number>();
  /** Keys with waiting tasks, in the order they are served next (a served key moves to the end). */
  readonly #queues = new Map<string, (() => void)[]>();

  constructor(
    readonly total: number,
    readonly perKey: number = total,
  ) {
    if (!Number.isInteger(total) || total < 1) throw new Error(`limiter total must be a positive integer (got ${total})`);
    if (!Number.isInteger(perKey) || perKey < 1) throw new Error(`limiter perKey must be a positive integer (got ${perKey})`);
  }

  /** Tasks running now (all keys, or one). */
  active(key?: string): number {
    return key === undefined ? this.#active : (this.#activeBy.get(key) ?? 0);
  }

  /** Tasks waiting for a slot (all keys, or one). */
  waiting(key?: string): number {
    if (key !== undefined) return this.#queues.get(key)?.length ?? 0;
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  /** Runs `fn` once a slot for `key` is free; its outcome is passed through. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.#active++;
        this.#activeBy.set(key, (this.#activeBy.get(key) ?? 0) + 1);
        let p: Promise<T>;
        try {
          p = fn();
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(resolve, reject).finally(() => {
          this.#active--;
          const n = (this.#activeBy.get(key) ?? 1) - 1;
          if (n === 0) this.#activeBy.delete(key);
          else this.#activeBy.set(key, n);
          this.#pump();
        });
      };
      const q = this.#queues.get(key);
      if (q) q.push(start);
      else this.#queues.set(key, [start]);
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#active < this.total) {
      // The waiting key running the fewest tasks; of equals, the one served longest ago.
      let pick: string | undefined;
      let least = Infinity;
      for (const key of this.#queues.keys()) {
        const n = this.#activeBy.get(key) ?? 0;
        if (n < this.perKey && n < least) {
          pick = key;
          least = n;
        }
      }
      if (pick === undefined) return;
      const q = this.#queues.get(pick) as (() => void)[];
      const start = q.shift() as () => void;
      // Round robin: the key just served waits behind the others.
      this.#queues.delete(pick);
      if (q.length > 0) this.#queues.set(pick, q);
      start();
    }
  }
}
