/**
 * An in-memory LogSource: events per service, filtered as the real sources filter them. Like a
 * file, a service's lines are appended to (`append`), and a cursor is how many lines a read
 * had: a resumed read sees only lines added since.
 */
import { createHash } from 'node:crypto';
import type { LogCursor, LogEvent, LogQuery, LogRead, LogSource, LogStats, RawLogChunk, RawLogPosition, RawLogStream } from '../../src/core/sources';
import { Failures } from './failures';

/**
 * A raw stream over text in memory, read as files are: from a byte offset, in chunks of whole
 * lines (`chunkBytes` small to exercise chunk edges), the position after a trailing partial
 * line staying before it. As a file, a position resumes only the same content (its first
 * bytes unchanged); otherwise the read starts over and says so.
 */
export class MemoryRawStream implements RawLogStream {
  readonly kind = 'file' as const;
  text: string;
  constructor(
    readonly name: string,
    readonly identity: string,
    text: string,
    readonly chunkBytes = 64 * 1024,
  ) {
    this.text = text;
  }

  async *read(from: RawLogPosition | undefined): AsyncIterable<RawLogChunk> {
    const all = Buffer.from(this.text, 'utf8');
    const headOf = (n: number) => createHash('sha256').update(all.subarray(0, n)).digest('hex');
    const headLen = Math.min(256, all.length);
    const head = headOf(headLen);
    const ok =
      from && typeof from.offset === 'number' && from.offset <= all.length && (from.head === undefined || ((from.headLen ?? 0) <= all.length && headOf(from.headLen ?? 0) === from.head));
    let restarted = from !== undefined && !ok;
    let offset = ok ? (from.offset as number) : 0;
    let line = ok ? (from.line ?? 1) : 1;
    if (offset >= all.length && restarted) yield { data: Buffer.alloc(0), offset: 0, line: 1, next: { offset: 0, line: 1, head, headLen }, restarted };
    while (offset < all.length) {
      const end = Math.min(all.length, offset + this.chunkBytes);
      // Whole lines, as files are read; a line longer than a chunk comes whole in its own.
      const nl = all.lastIndexOf(10, end - 1);
      const longEnd = all.indexOf(10, offset);
      const cut = nl >= offset ? nl + 1 : longEnd >= 0 ? longEnd + 1 : all.length;
      const data = all.subarray(offset, cut);
      const complete = data[data.length - 1] === 10 || cut < all.length;
      const lines = data.toString('latin1').split('\n').length - 1;
      const next = complete ? { offset: cut, line: line + lines, head, headLen } : { offset, line, head, headLen };
      yield { data: Buffer.from(data), offset, line, next, ...(restarted ? { restarted } : {}) };
      restarted = false;
      if (!complete) return;
      offset = cut;
      line += lines;
    }
  }
}

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

  readonly #raw: Record<string, RawLogStream[]>;

  /** `raw`: each service's raw streams; a service without one gets a stream of its lines as JSON. */
  constructor(lines: Record<string, FakeLogLine[]>, opts: { windowMs?: number; lookbackMs?: number; name?: string; raw?: Record<string, RawLogStream[]> } = {}) {
    this.#lines = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, [...v]]));
    this.windowMs = opts.windowMs ?? 24 * 3_600_000;
    this.lookbackMs = opts.lookbackMs ?? 30 * 86_400_000;
    this.#name = opts.name ?? 'fake';
    this.#raw = opts.raw ?? {};
  }

  async rawStreams(service: string): Promise<RawLogStream[]> {
    this.failures.check('events');
    const raw = this.#raw[service];
    if (raw) return raw;
    const lines = this.#lines[service];
    if (!lines) return [];
    const text = lines.map((l) => JSON.stringify({ ...l, ts: new Date(l.ts).toISOString() }) + '\n').join('');
    return [new MemoryRawStream(`fake/${service}.jsonl`, `fake:${service}`, text)];
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
    return [...new Set([...Object.keys(this.#lines), ...Object.keys(this.#raw)])];
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
