/**
 * JSON-lines log files, a glob per service. Lines are split by hand so one enormous line
 * (a stack trace, a dumped payload) is skipped and counted instead of exhausting memory.
 */
import { createReadStream } from 'node:fs';
import { glob } from 'tinyglobby';
import type { LogEvent, LogQuery, LogSource, LogStats } from '../core/sources';
import { guard, stopIfAborted, wrapSourceError } from './errors';
import { isAuditError, sourceUnavailable } from '../core/errors';

const SOURCE = 'logs';
/** Lines longer than this are not log events we read; they are skipped and counted. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Splits a byte stream into lines, dropping (and counting) lines over the cap. */
export async function* readLines(path: string, maxLineBytes = MAX_LINE_BYTES, onOversize: () => void = () => undefined): AsyncIterable<{ line: string; n: number }> {
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let dropping = false;
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      n++;
      if (!dropping && pendingLen + (nl - start) <= maxLineBytes) {
        const part = chunk.subarray(start, nl);
        const line = pendingLen > 0 ? Buffer.concat([...pending, part]).toString('utf8') : part.toString('utf8');
        yield { line, n };
      } else onOversize();
      pending = [];
      pendingLen = 0;
      dropping = false;
      start = nl + 1;
    }
    if (start < chunk.length && !dropping) {
      pending.push(chunk.subarray(start));
      pendingLen += chunk.length - start;
      if (pendingLen > maxLineBytes) {
        dropping = true;
        pending = [];
        pendingLen = 0;
      }
    }
  }
  if (dropping) {
    onOversize();
  } else if (pendingLen > 0) {
    yield { line: Buffer.concat(pending).toString('utf8'), n: n + 1 };
  }
}

/** Parses one line into an event, or undefined (ignored) when it is not a JSON object with a valid `ts`. */
export function parseLogLine(line: string, service: string, origin: string): LogEvent | undefined {
  const t = line.trim();
  if (t.length === 0 || t[0] !== '{') return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const fields = obj as Record<string, unknown>;
  if (typeof fields.ts !== 'string' && typeof fields.ts !== 'number') return undefined;
  const ts = new Date(fields.ts);
  if (Number.isNaN(ts.getTime())) return undefined;
  return { ts, service, fields, origin };
}

export class FileLogSource implements LogSource {
  readonly #globs: Record<string, string>;
  readonly windowMs: number;
  #stats: LogStats = { linesRead: 0, linesIgnored: 0 };

  constructor(globs: Record<string, string>, windowMs: number) {
    this.#globs = globs;
    this.windowMs = windowMs;
  }

  services(): string[] {
    return Object.keys(this.#globs);
  }

  stats(): LogStats {
    return { ...this.#stats };
  }

  async *events(service: string, q: LogQuery): AsyncIterable<LogEvent> {
    const pattern = this.#globs[service];
    if (!pattern) return;
    const files = await guard(SOURCE, `listing ${pattern}`, () => glob(pattern, { absolute: true, onlyFiles: true }));
    // A configured location with no files is a broken mount or a typo, not a quiet service:
    // reading it as "no events" would turn an outage into a pass.
    if (files.length === 0) {
      throw sourceUnavailable(SOURCE, 'not_found', `no files match ${pattern} (sources.logs.files.${service})`);
    }
    files.sort();
    const since = q.since.getTime();
    const until = q.until?.getTime() ?? Infinity;
    const needle = q.event ? `"${q.event}"` : undefined;
    const buffered: LogEvent[] = [];
    for (const file of files) {
      try {
        for await (const { line, n } of readLines(file, MAX_LINE_BYTES, () => this.#stats.linesIgnored++)) {
          stopIfAborted(q.signal, SOURCE, `reading ${file}`);
          this.#stats.linesRead++;
          // Cheap pre-filter before JSON.parse: most lines are not the event we want.
          if (needle && !line.includes(needle)) {
            this.#stats.linesIgnored++;
            continue;
          }
          const ev = parseLogLine(line, service, `file:${file}:${n}`);
          if (!ev || (q.event && ev.fields.event !== q.event)) {
            this.#stats.linesIgnored++;
            continue;
          }
          const t = ev.ts.getTime();
          if (t < since || t > until) continue;
          buffered.push(ev);
        }
      } catch (e) {
        if (isAuditError(e)) throw e;
        const err = e as NodeJS.ErrnoException;
        // A file rotated away between listing and reading is not an outage.
        if (err.code === 'ENOENT') continue;
        throw wrapSourceError(SOURCE, `reading ${file}`, e);
      }
    }
    // Files of one service may interleave (rotation, several instances): yield in time order.
    buffered.sort((a, b) => a.ts.getTime() - b.ts.getTime());
    yield* buffered;
  }
}
