/**
 * CloudWatch Logs as a LogSource: FilterLogEvents over a time range (epoch milliseconds),
 * one log group per service, through the SDK paginator, in day-long time slices. Pages can
 * be empty while still carrying a token; only a missing token ends a slice. When the query
 * names an event, it is pushed down as a JSON filter pattern so only matching events cross
 * the wire. A resumed read starts where the last one began, less `ingestion_delay`.
 */
import { CloudWatchLogsClient, paginateFilterLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import type { LogCursor, LogEvent, LogQuery, LogRead, LogSource, LogStats, RawLogChunk, RawLogEventMark, RawLogPosition, RawLogStream } from '../core/sources';
import { badData } from '../core/errors';
import type { LogsConfig } from '../config/schema';
import { awsClientConfig, MAX_PAGES } from './aws';
import { stopIfAborted, wrapSourceError } from './errors';
import { DEFAULT_LOOKBACK_MS, parseLogLine } from './log-files';
import { cursorAt, GeneratedLogRead, mergeByTime } from './log-read';

const SOURCE = 'logs';

type CloudWatchConfig = NonNullable<LogsConfig['cloudwatch']>;

/** `{ $.event = "x" }`; event names are ours (snake_case), but quote-escape anyway. */
export function eventFilterPattern(event: string): string {
  return `{ $.event = ${JSON.stringify(event)} }`;
}

/** A CloudWatch read's cursor: how far (epoch ms, the client's clock) the read reached. */
interface CloudWatchAt {
  t: number;
}

function isCloudWatchAt(v: unknown): v is CloudWatchAt {
  return !!v && typeof v === 'object' && Number.isSafeInteger((v as CloudWatchAt).t);
}

/**
 * A long read is split into time slices of this length, each its own FilterLogEvents
 * pagination (startTime/endTime inclusive): a 30-day lookback is 30 short paginations, so a
 * nextToken never has to live long and the service never has to search the whole range at once.
 */
export const TIME_SLICE_MS = 86_400_000;
/** Slices are longer when a read spans more than this many days (a read from the epoch is not 20 000 calls). */
const MAX_SLICES = 60;

export class CloudWatchLogSource implements LogSource {
  readonly #client: CloudWatchLogsClient;
  readonly #groups: Record<string, string>;
  readonly #pageSize: number;
  readonly #ingestionDelayMs: number;
  readonly #where: string;
  readonly windowMs: number;
  readonly lookbackMs: number;
  #stats: LogStats = { linesRead: 0, linesIgnored: 0 };

  constructor(cfg: CloudWatchConfig, windowMs: number, opts: { lookbackMs?: number } = {}) {
    this.#client = new CloudWatchLogsClient(awsClientConfig(cfg, 'logs (cloudwatch)'));
    this.#groups = { ...cfg.groups };
    this.#pageSize = cfg.page_size;
    this.#ingestionDelayMs = cfg.ingestion_delay;
    this.#where = cfg.endpoint ? `${cfg.region}@${cfg.endpoint}` : cfg.region;
    this.windowMs = windowMs;
    this.lookbackMs = opts.lookbackMs ?? DEFAULT_LOOKBACK_MS;
  }

  services(): string[] {
    return Object.keys(this.#groups);
  }

  location(service: string): string {
    return `cloudwatch:${this.#where}:${this.#groups[service] ?? '(none)'}`;
  }

  stats(): LogStats {
    return { ...this.#stats };
  }

  async rawStreams(service: string): Promise<RawLogStream[]> {
    const group = this.#groups[service];
    if (!group) return [];
    const client = this.#client;
    const pageSize = this.#pageSize;
    const delay = this.#ingestionDelayMs;
    return [
      {
        kind: 'cloudwatch',
        name: group,
        identity: `cloudwatch:${this.#where}:${group}`,
        read: (from, opts) => readGroupRaw(client, pageSize, group, delay, from, opts),
      },
    ];
  }

  events(service: string, q: LogQuery): LogRead {
    const location = this.location(service);
    const after = cursorAt(q.after, location);
    // The client's clock when the read began: the next read resumes from here, less the
    // ingestion delay, so events that reached CloudWatch late are still read.
    const readAt = Date.now();
    return new GeneratedLogRead(
      location,
      q.until !== undefined,
      () => this.#read(service, q, isCloudWatchAt(after) ? after.t - this.#ingestionDelayMs : undefined, readAt),
      (): CloudWatchAt => ({ t: readAt }),
    );
  }

  async *#read(service: string, q: LogQuery, resumeFrom: number | undefined, readAt: number): AsyncGenerator<LogEvent> {
    const group = this.#groups[service];
    if (!group) return;
    const since = q.since.getTime();
    const until = q.until?.getTime() ?? Infinity;
    const from = Math.max(since, resumeFrom ?? since);
    // Unbounded reads slice up to the read's start, then one open slice: events stamped a
    // little in the future (clock skew) are still read.
    const to = q.until ? until : Math.max(from, readAt);
    const what = `reading CloudWatch log group ${group}`;
    const slice = Math.max(TIME_SLICE_MS, Math.ceil((to - from + 1) / MAX_SLICES));
    for (let s = from; s <= to; s += slice) {
      const last = s + slice > to;
      const input = {
        logGroupName: group,
        startTime: s,
        ...(last && !q.until ? {} : { endTime: Math.min(s + slice - 1, to) }),
        ...(q.event ? { filterPattern: eventFilterPattern(q.event) } : {}),
      };
      let n = 0;
      // Pages come sorted by CloudWatch's timestamp: yielded as they come, one page in memory.
      const it = paginateFilterLogEvents({ client: this.#client, pageSize: this.#pageSize, stopOnSameToken: true }, input);
      for (;;) {
        let page: Awaited<ReturnType<(typeof it)['next']>>;
        try {
          stopIfAborted(q.signal, SOURCE, what);
          page = await it.next();
        } catch (e) {
          throw wrapSourceError(SOURCE, what, e);
        }
        if (page.done) break;
        if (++n > MAX_PAGES) throw badData(SOURCE, what, `more than ${MAX_PAGES} pages`);
        for (const e of page.value.events ?? []) {
          this.#stats.linesRead++;
          const ev = typeof e.message === 'string' ? parseLogLine(e.message, service, `cloudwatch:${group}:${e.logStreamName ?? ''}`) : undefined;
          if (!ev || (q.event && ev.fields.event !== q.event)) {
            this.#stats.linesIgnored++;
            continue;
          }
          const t = ev.ts.getTime();
          if (t < since || t > until) continue;
          yield ev;
        }
      }
    }
  }

  close(): void {
    this.#client.destroy();
  }
}

/** A combined read's cursor: one per part that has the service. */
interface CombinedAt {
  parts: (LogCursor | undefined)[];
}

/**
 * Every event of a log group after a position (or since a time), one chunk per page: the
 * messages joined by newlines, with where each event starts. Resumes from the last event
 * read, less the ingestion delay (events reach CloudWatch late): events in that margin come
 * again, except the ones at the last timestamp already read; consumers count idempotently.
 */
async function* readGroupRaw(
  client: CloudWatchLogsClient,
  pageSize: number,
  group: string,
  ingestionDelayMs: number,
  from: RawLogPosition | undefined,
  opts: { since: Date; signal?: AbortSignal },
): AsyncIterable<RawLogChunk> {
  const resumeAt = typeof from?.ts === 'number' ? from.ts : undefined;
  const startTime = resumeAt !== undefined ? resumeAt - ingestionDelayMs : opts.since.getTime();
  const seen = new Set(typeof from?.ts === 'number' ? (from.ids ?? []) : []);
  const what = `reading CloudWatch log group ${group}`;
  let lastTs = typeof from?.ts === 'number' ? from.ts : undefined;
  let idsAtLast = [...seen];
  let n = 0;
  try {
    const it = paginateFilterLogEvents({ client, pageSize, stopOnSameToken: true }, { logGroupName: group, startTime });
    for await (const page of it) {
      stopIfAborted(opts.signal, SOURCE, what);
      if (++n > MAX_PAGES) throw badData(SOURCE, what, `more than ${MAX_PAGES} pages`);
      const parts: Buffer[] = [];
      const events: RawLogEventMark[] = [];
      let at = 0;
      for (const e of page.events ?? []) {
        if (typeof e.message !== 'string' || typeof e.timestamp !== 'number') continue;
        const id = e.eventId ?? `${e.logStreamName ?? ''}:${e.timestamp}`;
        if (e.timestamp === resumeAt && seen.has(id)) continue;
        const bytes = Buffer.from(e.message + '\n', 'utf8');
        events.push({ at, id, ts: e.timestamp, stream: e.logStreamName ?? '' });
        parts.push(bytes);
        at += bytes.length;
        if (lastTs === undefined || e.timestamp > lastTs) {
          lastTs = e.timestamp;
          idsAtLast = [id];
        } else if (e.timestamp === lastTs) idsAtLast.push(id);
      }
      if (events.length === 0) continue;
      yield { data: Buffer.concat(parts, at), offset: 0, line: 1, events, next: { ts: lastTs, ids: [...idsAtLast] } };
    }
  } catch (e) {
    throw wrapSourceError(SOURCE, what, e);
  }
}

/**
 * Several log sources behind one: a service's events come from every source that has it
 * (files for some services, CloudWatch for others, or both during a migration), merged in
 * time order.
 */
export class CombinedLogSource implements LogSource {
  readonly #parts: LogSource[];
  readonly windowMs: number;
  readonly lookbackMs: number;

  constructor(parts: LogSource[], windowMs: number, opts: { lookbackMs?: number } = {}) {
    this.#parts = parts;
    this.windowMs = windowMs;
    this.lookbackMs = opts.lookbackMs ?? DEFAULT_LOOKBACK_MS;
  }

  services(): string[] {
    return [...new Set(this.#parts.flatMap((p) => p.services()))];
  }

  async rawStreams(service: string, signal?: AbortSignal): Promise<RawLogStream[]> {
    const all = await Promise.all(this.#parts.map((p) => p.rawStreams(service, signal)));
    return all.flat();
  }

  #having(service: string): LogSource[] {
    return this.#parts.filter((p) => p.services().includes(service));
  }

  location(service: string): string {
    const having = this.#having(service);
    if (having.length === 1) return having[0].location(service);
    return having.map((p) => p.location(service)).join(' + ') || '(none)';
  }

  stats(): LogStats {
    const s = { linesRead: 0, linesIgnored: 0 };
    for (const p of this.#parts) {
      const x = p.stats();
      s.linesRead += x.linesRead;
      s.linesIgnored += x.linesIgnored;
    }
    return s;
  }

  events(service: string, q: LogQuery): LogRead {
    const having = this.#having(service);
    if (having.length === 1) return having[0].events(service, q);
    const location = this.location(service);
    const after = cursorAt(q.after, location) as CombinedAt | undefined;
    const reads = having.map((p, i) => p.events(service, { ...q, after: Array.isArray(after?.parts) ? after.parts[i] : undefined }));
    return new GeneratedLogRead(
      location,
      q.until !== undefined,
      () => mergeByTime(reads),
      (): CombinedAt => ({ parts: reads.map((r) => r.cursor()) }),
    );
  }
}
