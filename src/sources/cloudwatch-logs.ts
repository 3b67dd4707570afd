/**
 * CloudWatch Logs as a LogSource: FilterLogEvents over a time window (epoch milliseconds),
 * one log group per service, through the SDK paginator. Pages can be empty while still
 * carrying a token; only a missing token ends the read. When the query names an event, it
 * is pushed down as a JSON filter pattern so only matching events cross the wire.
 */
import { CloudWatchLogsClient, paginateFilterLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import type { LogEvent, LogQuery, LogSource, LogStats } from '../core/sources';
import { badData } from '../core/errors';
import type { LogsConfig } from '../config/schema';
import { awsClientConfig, MAX_PAGES } from './aws';
import { stopIfAborted, wrapSourceError } from './errors';
import { parseLogLine } from './log-files';

const SOURCE = 'logs';

type CloudWatchConfig = NonNullable<LogsConfig['cloudwatch']>;

/** `{ $.event = "x" }`; event names are ours (snake_case), but quote-escape anyway. */
export function eventFilterPattern(event: string): string {
  return `{ $.event = ${JSON.stringify(event)} }`;
}

export class CloudWatchLogSource implements LogSource {
  readonly #client: CloudWatchLogsClient;
  readonly #groups: Record<string, string>;
  readonly #pageSize: number;
  readonly windowMs: number;
  #stats: LogStats = { linesRead: 0, linesIgnored: 0 };

  constructor(cfg: CloudWatchConfig, windowMs: number) {
    this.#client = new CloudWatchLogsClient(awsClientConfig(cfg, 'logs (cloudwatch)'));
    this.#groups = { ...cfg.groups };
    this.#pageSize = cfg.page_size;
    this.windowMs = windowMs;
  }

  services(): string[] {
    return Object.keys(this.#groups);
  }

  stats(): LogStats {
    return { ...this.#stats };
  }

  async *events(service: string, q: LogQuery): AsyncIterable<LogEvent> {
    const group = this.#groups[service];
    if (!group) return;
    const input = {
      logGroupName: group,
      startTime: q.since.getTime(),
      ...(q.until ? { endTime: q.until.getTime() } : {}),
      ...(q.event ? { filterPattern: eventFilterPattern(q.event) } : {}),
    };
    const what = `reading CloudWatch log group ${group}`;
    const since = q.since.getTime();
    const until = q.until?.getTime() ?? Infinity;
    const buffered: LogEvent[] = [];
    let n = 0;
    try {
      const it = paginateFilterLogEvents({ client: this.#client, pageSize: this.#pageSize, stopOnSameToken: true }, input);
      for await (const page of it) {
        stopIfAborted(q.signal, SOURCE, what);
        if (++n > MAX_PAGES) throw badData(SOURCE, what, `more than ${MAX_PAGES} pages`);
        for (const e of page.events ?? []) {
          this.#stats.linesRead++;
          const ev = typeof e.message === 'string' ? parseLogLine(e.message, service, `cloudwatch:${group}:${e.logStreamName ?? ''}`) : undefined;
          if (!ev || (q.event && ev.fields.event !== q.event)) {
            this.#stats.linesIgnored++;
            continue;
          }
          const t = ev.ts.getTime();
          if (t < since || t > until) continue;
          buffered.push(ev);
        }
      }
    } catch (e) {
      throw wrapSourceError(SOURCE, what, e);
    }
    // The service sorts by ingestion-side timestamp; the line's own `ts` is what checks reason about.
    buffered.sort((a, b) => a.ts.getTime() - b.ts.getTime());
    yield* buffered;
  }

  close(): void {
    this.#client.destroy();
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

  constructor(parts: LogSource[], windowMs: number) {
    this.#parts = parts;
    this.windowMs = windowMs;
  }

  services(): string[] {
    return [...new Set(this.#parts.flatMap((p) => p.services()))];
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

  async *events(service: string, q: LogQuery): AsyncIterable<LogEvent> {
    const having = this.#parts.filter((p) => p.services().includes(service));
    if (having.length === 1) {
      yield* having[0].events(service, q);
      return;
    }
    const all: LogEvent[] = [];
    for (const p of having) for await (const ev of p.events(service, q)) all.push(ev);
    all.sort((a, b) => a.ts.getTime() - b.ts.getTime());
    yield* all;
  }
}
