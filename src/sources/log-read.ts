/**
 * What the log sources share: a read that can say where it stopped (its cursor), and a merge
 * of several time-ordered event streams (files of a service, CloudWatch and files) by their
 * heads, so a read over any number of them holds one event per stream, not the whole read.
 */
import type { LogCursor, LogEvent, LogRead } from '../core/sources';

/** A {@link LogRead} over a generator; `at()` gives the position once the generator has finished. */
export class GeneratedLogRead implements LogRead {
  readonly #gen: () => AsyncIterable<LogEvent>;
  readonly #at: () => unknown;
  readonly #location: string;
  readonly #bounded: boolean;
  #done = false;

  constructor(location: string, bounded: boolean, gen: () => AsyncIterable<LogEvent>, at: () => unknown) {
    this.#location = location;
    this.#bounded = bounded;
    this.#gen = gen;
    this.#at = at;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LogEvent> {
    yield* this.#gen();
    this.#done = true;
  }

  cursor(): LogCursor {
    // Programming errors, not source faults: a cursor here would skip events nobody read.
    if (this.#bounded) throw new Error(`a log read bounded by 'until' cannot be resumed (${this.#location})`);
    if (!this.#done) throw new Error(`the log read of ${this.#location} has not run to its end: no cursor yet`);
    return { location: this.#location, at: this.#at() };
  }
}

/** The part of a cursor for `location`, or undefined when the cursor is of something else. */
export function cursorAt(cursor: LogCursor | undefined, location: string): unknown {
  return cursor && cursor.location === location ? cursor.at : undefined;
}

/**
 * Merges event streams, each oldest first, into one oldest first (ties keep the streams'
 * order). Holds one pending event per stream.
 */
export async function* mergeByTime(streams: readonly AsyncIterable<LogEvent>[]): AsyncGenerator<LogEvent> {
  if (streams.length === 1) {
    yield* streams[0];
    return;
  }
  const its = streams.map((s) => s[Symbol.asyncIterator]());
  try {
    const heads: IteratorResult<LogEvent>[] = [];
    // One after another: a failing stream fails the same way whatever the timing.
    for (const it of its) heads.push(await it.next());
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h.done) continue;
        if (best < 0 || h.value.ts.getTime() < (heads[best].value as LogEvent).ts.getTime()) best = i;
      }
      if (best < 0) return;
      const ev = heads[best].value as LogEvent;
      heads[best] = await its[best].next();
      yield ev;
    }
  } finally {
    await Promise.all(its.map((it) => it.return?.().catch(() => undefined)));
  }
}
