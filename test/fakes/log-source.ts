/**
 * An in-memory LogSource: events per service, filtered as the real sources filter them. Like a
 * file, a service's lines are appended to (`append`), and a cursor is how many lines a read
 * had: a resumed read sees only lines added since.
 */
import type { LogCursor, LogEvent, LogQuery, LogRead, LogSource, LogStats } from '../../src/core/sources';
import { Failures } from './failures';

/** A log line as the services write it: `ts` plus any fields. */
export type FakeLogLine = { ts: string | Date; [field: string]: unknown };

export class FakeLogSource implements LogSource {
  readonly windowMs: number;
  readonly lookbackMs: number;
  readonly #lines: Record<string, FakeLogLine[]>;
  readonly #name: string;
  readonly failures = new Failures<'events'>('logs');
  #stats: LogStats = { linesRead: 0, linesIgnored: 0 };
  /** Every query asked, to assert the window a check used. */
  readonly queries: { service: string; query: LogQuery }[] = [];

  constructor(lines: Record<string, FakeLogLine[]>, opts: { windowMs?: number; lookbackMs?: number; name?: string } = {}) {
    this.#lines = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, [...v]]));
    this.windowMs = opts.windowMs ?? 24 * 3_600_000;
    this.lookbackMs = opts.lookbackMs ?? 30 * 86_400_000;
    this.#name = opts.name ?? 'fake';
  }

  fail(error?: Error): this {
    this.failures.set('events', error);
    return this;
  }

  /** New lines of a service, as a running service appends them. */
  append(service: string, lines: FakeLogLine[]): this {
    (this.#lines[service] ??= []).push(...lines);
    return this;
  }

  services(): string[] {
    return Object.keys(this.#lines);
  }

  location(service: string): string {
    return `${this.#name}:${service}`;
  }

  stats(): LogStats {
    return { ...this.#stats };
  }

  events(service: string, query: LogQuery): LogRead {
    this.queries.push({ service, query });
    const location = this.location(service);
    const all = this.#lines[service] ?? [];
    const at = all.length;
    const resume = query.after?.location === location ? (query.after.at as { n?: unknown }).n : undefined;
    const from = typeof resume === 'number' && resume <= at ? resume : 0;
    let done = false;
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        self.failures.check('events');
        const out: LogEvent[] = [];
        all.slice(from, at).forEach((line, j) => {
          self.#stats.linesRead++;
          const ts = new Date(line.ts);
          const fields: Record<string, unknown> = { ...line, ts: ts.toISOString() };
          if (query.event !== undefined && fields.event !== query.event) {
            self.#stats.linesIgnored++;
            return;
          }
          if (ts < query.since || (query.until && ts > query.until)) return;
          out.push({ ts, service, fields, origin: `fake:${service}:${from + j + 1}` });
        });
        out.sort((a, b) => a.ts.getTime() - b.ts.getTime());
        yield* out;
        done = true;
      },
      cursor(): LogCursor {
        if (query.until) throw new Error('a log read bounded by until cannot be resumed');
        if (!done) throw new Error('cursor() before the read ran to its end');
        return { location, at: { n: at } };
      },
    };
  }
}
