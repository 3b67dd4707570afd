/** An in-memory LogSource: events per service, filtered as the real sources filter them. */
import type { LogEvent, LogQuery, LogSource, LogStats } from '../../src/core/sources';
import { Failures } from './failures';

/** A log line as the services write it: `ts` plus any fields. */
export type FakeLogLine = { ts: string | Date; [field: string]: unknown };

export class FakeLogSource implements LogSource {
  readonly windowMs: number;
  readonly #lines: Record<string, FakeLogLine[]>;
  readonly failures = new Failures<'events'>('logs');
  #stats: LogStats = { linesRead: 0, linesIgnored: 0 };
  /** Every query asked, to assert the window a check used. */
  readonly queries: { service: string; query: LogQuery }[] = [];

  constructor(lines: Record<string, FakeLogLine[]>, opts: { windowMs?: number } = {}) {
    this.#lines = lines;
    this.windowMs = opts.windowMs ?? 24 * 3_600_000;
  }

  fail(error?: Error): this {
    this.failures.set('events', error);
    return this;
  }

  services(): string[] {
    return Object.keys(this.#lines);
  }

  stats(): LogStats {
    return { ...this.#stats };
  }

  async *events(service: string, query: LogQuery): AsyncIterable<LogEvent> {
    this.queries.push({ service, query });
    this.failures.check('events');
    const out: LogEvent[] = [];
    (this.#lines[service] ?? []).forEach((line, i) => {
      this.#stats.linesRead++;
      const ts = new Date(line.ts);
      const fields: Record<string, unknown> = { ...line, ts: ts.toISOString() };
      if (query.event !== undefined && fields.event !== query.event) {
        this.#stats.linesIgnored++;
        return;
      }
      if (ts < query.since || (query.until && ts > query.until)) return;
      out.push({ ts, service, fields, origin: `fake:${service}:${i + 1}` });
    });
    out.sort((a, b) => a.ts.getTime() - b.ts.getTime());
    yield* out;
  }
}
