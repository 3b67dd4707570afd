/**
 * JSON-lines log files, a glob per service. Lines are split by hand so one enormous line
 * (a stack trace, a dumped payload) is skipped and counted instead of exhausting memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { glob } from 'tinyglobby';
import type { LogEvent, LogQuery, LogRead, LogSource, LogStats, RawLogChunk, RawLogPosition, RawLogStream } from '../core/sources';
import { guard, stopIfAborted, wrapSourceError } from './errors';
import { isAuditError, sourceUnavailable } from '../core/errors';
import { cursorAt, GeneratedLogRead, mergeByTime } from './log-read';

const SOURCE = 'logs';
/** `sources.logs.lookback` when a source is built without one (the config default). */
export const DEFAULT_LOOKBACK_MS = 30 * 86_400_000;
/** Lines longer than this are not log events we read; they are skipped and counted. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Where a line read ends: `end` is the byte position after the last newline read so far, `line` that line's number. */
export interface LineProgress {
  end: number;
  line: number;
}

/**
 * Splits a file into lines from byte `start` (a line boundary), dropping (and counting) lines
 * over the cap. `progress.end` follows the last newline, so a line still being written at the
 * end of the file (no newline yet) is yielded but not passed: a resumed read sees it again.
 * `firstLine` numbers the first line read (1 from the start of the file).
 */
export async function* readLines(
  path: string,
  maxLineBytes = MAX_LINE_BYTES,
  onOversize: () => void = () => undefined,
  opts: {
    start?: number;
    firstLine?: number;
    progress?: LineProgress;
    highWaterMark?: number;
    /**
     * Only lines containing these bytes are wanted: others are skipped in the buffer, without
     * becoming strings (counted through `onSkip`). A line may still be yielded without them
     * (one that spanned chunks): callers check again.
     */
    mustContain?: Buffer;
    onSkip?: (lines: number) => void;
  } = {},
): AsyncIterable<{ line: string; n: number }> {
  const needle = opts.mustContain && opts.mustContain.length > 0 ? opts.mustContain : undefined;
  const progress = opts.progress ?? { end: 0, line: 0 };
  let chunkStart = opts.start ?? 0;
  progress.end = chunkStart;
  progress.line = (opts.firstLine ?? 1) - 1;
  const stream = createReadStream(path, { highWaterMark: opts.highWaterMark ?? 256 * 1024, start: chunkStart });
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let dropping = false;
  let n = (opts.firstLine ?? 1) - 1;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      if (needle && pendingLen === 0 && !dropping) {
        // Skip, in the buffer, every whole line before the next one holding the needle.
        const hit = chunk.indexOf(needle, start);
        const until = hit < 0 ? chunk.length : Math.max(start, chunk.lastIndexOf(10, hit) + 1);
        let skipped = 0;
        for (;;) {
          const nl = chunk.indexOf(10, start);
          if (nl < 0 || nl >= until) break;
          skipped++;
          start = nl + 1;
        }
        if (skipped > 0) {
          n += skipped;
          progress.end = chunkStart + start;
          progress.line = n;
          opts.onSkip?.(skipped);
        }
      }
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      n++;
      progress.end = chunkStart + nl + 1;
      progress.line = n;
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
    chunkStart += chunk.length;
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

/** Where a read left one file: found again by device and inode, so a rename (rotation) keeps it. */
interface FilePosition {
  /** Byte position after the last complete line read. */
  offset: number;
  /** Number of the next line (for origins). */
  line: number;
  /** SHA-256 of the file's first `headLen` bytes: a new file that reused the inode is not resumed. */
  head: string;
  headLen: number;
}

/** The cursor of a file read: positions by `<dev>:<ino>`. */
interface FilesAt {
  files: Record<string, FilePosition>;
}

const HEAD_BYTES = 256;

function isFilesAt(v: unknown): v is FilesAt {
  return !!v && typeof v === 'object' && !!(v as FilesAt).files && typeof (v as FilesAt).files === 'object';
}

async function headHash(path: string, len: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, 0);
    return createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex');
  } finally {
    await fh.close();
  }
}

/** Raw chunks are cut at the last newline of about this many bytes; a longer line is cut anywhere. */
export const RAW_CHUNK_BYTES = 1024 * 1024;

/** Counts newlines in buf[from, to). */
function countLines(buf: Buffer, from = 0, to = buf.length): number {
  let n = 0;
  for (let i = buf.indexOf(10, from); i >= 0 && i < to; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * One log file read raw, from a byte offset, in chunks of whole lines. A final line without
 * its newline is handed over too, but the position after the chunk stays before it, so the
 * next read sees it again once it is complete. A position resumes only the content it was
 * taken in: the file must still be as long and start with the same bytes (a file truncated
 * and written again past the old offset has not); otherwise the file is read from its start
 * and the first chunk says so (`restarted`), an empty one if the file is now empty.
 */
export class RawLogFile implements RawLogStream {
  readonly kind = 'file' as const;
  constructor(
    readonly name: string,
    readonly identity: string,
    readonly size: number,
  ) {}

  async *read(from: RawLogPosition | undefined, opts: { since: Date; signal?: AbortSignal }): AsyncIterable<RawLogChunk> {
    const what = `reading ${this.name}`;
    // A position remembers (as a hash) the file's first HEAD_BYTES: a file truncated or rewritten in place has another start.
    const headLen = Math.min(HEAD_BYTES, this.size);
    let head: string;
    let resume: RawLogPosition | undefined;
    try {
      head = await headHash(this.name, headLen);
      if (from && typeof from.offset === 'number' && Number.isSafeInteger(from.offset) && from.offset >= 0 && from.offset <= this.size) {
        const len = from.headLen ?? 0;
        const sameStart = from.head === undefined || (Number.isSafeInteger(len) && len >= 0 && len <= this.size && (len === headLen ? head : await headHash(this.name, len)) === from.head);
        if (sameStart) resume = from;
      }
    } catch (e) {
      // Rotated away between listing and reading: nothing more to read in it.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw wrapSourceError(SOURCE, what, e);
    }
    let restarted = from !== undefined && resume === undefined;
    let offset = resume?.offset ?? 0;
    let line = resume?.line ?? 1;
    const at = (o: number, l: number): RawLogPosition => ({ offset: o, line: l, head, headLen });
    if (offset >= this.size) {
      if (restarted) yield { data: Buffer.alloc(0), offset: 0, line: 1, next: at(0, 1), restarted };
      return;
    }
    let carry: Buffer | undefined;
    try {
      const stream = createReadStream(this.name, { start: offset, end: this.size - 1, highWaterMark: RAW_CHUNK_BYTES });
      for await (const piece of stream as AsyncIterable<Buffer>) {
        stopIfAborted(opts.signal, SOURCE, what);
        const buf = carry ? Buffer.concat([carry, piece]) : piece;
        const nl = buf.lastIndexOf(10);
        if (nl < 0 && buf.length < RAW_CHUNK_BYTES) {
          carry = buf;
          continue;
        }
        // Whole lines, or (a line longer than a chunk) the bytes so far.
        const cut = nl >= 0 ? nl + 1 : buf.length;
        const data = buf.subarray(0, cut);
        const lines = countLines(data);
        const next = at(offset + cut, line + lines);
        yield { data, offset, line, next, ...(restarted ? { restarted } : {}) };
        restarted = false;
        offset = next.offset as number;
        line = next.line as number;
        carry = cut < buf.length ? Buffer.from(buf.subarray(cut)) : undefined;
      }
    } catch (e) {
      if (isAuditError(e)) throw e;
      // Rotated away between listing and reading: nothing more to read in it.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw wrapSourceError(SOURCE, what, e);
    }
    if (carry && carry.length > 0) yield { data: carry, offset, line, next: at(offset, line), ...(restarted ? { restarted } : {}) };
  }
}

/**
 * The files a glob matches now, as raw streams (identity: device and inode, so a rotated file
 * keeps its checkpoint); a file under two names (a hard link) is one stream.
 */
export async function rawLogFiles(pattern: string, setting: string, signal?: AbortSignal): Promise<RawLogFile[]> {
  const files = await guard(SOURCE, `listing ${pattern}`, () => glob(pattern, { absolute: true, onlyFiles: true }));
  if (files.length === 0) throw sourceUnavailable(SOURCE, 'not_found', `no files match ${pattern} (${setting})`);
  files.sort();
  const out: RawLogFile[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    stopIfAborted(signal, SOURCE, `listing ${pattern}`);
    try {
      const st = await stat(file, { bigint: true });
      const born = st.birthtimeMs > 0n ? `:${st.birthtimeMs}` : '';
      const identity = `file:${st.dev}:${st.ino}${born}`;
      if (seen.has(identity)) continue;
      seen.add(identity);
      out.push(new RawLogFile(file, identity, Number(st.size)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw wrapSourceError(SOURCE, `reading ${file}`, e);
    }
  }
  return out;
}

export class FileLogSource implements LogSource {
  readonly #globs: Record<string, string>;
  readonly windowMs: number;
  readonly lookbackMs: number;
  #stats: LogStats = { linesRead: 0, linesIgnored: 0 };

  constructor(globs: Record<string, string>, windowMs: number, opts: { lookbackMs?: number } = {}) {
    this.#globs = globs;
    this.windowMs = windowMs;
    this.lookbackMs = opts.lookbackMs ?? DEFAULT_LOOKBACK_MS;
  }

  services(): string[] {
    return Object.keys(this.#globs);
  }

  location(service: string): string {
    return `files:${this.#globs[service] ?? '(none)'}`;
  }

  stats(): LogStats {
    return { ...this.#stats };
  }

  async rawStreams(service: string, signal?: AbortSignal): Promise<RawLogStream[]> {
    const pattern = this.#globs[service];
    if (!pattern) return [];
    return rawLogFiles(pattern, `sources.logs.files.${service}`, signal);
  }

  events(service: string, q: LogQuery): LogRead {
    const location = this.location(service);
    const after = cursorAt(q.after, location);
    const next: FilesAt = { files: {} };
    return new GeneratedLogRead(location, q.until !== undefined, () => this.#read(service, q, isFilesAt(after) ? after : undefined, next), () => next);
  }

  async *#read(service: string, q: LogQuery, after: FilesAt | undefined, next: FilesAt): AsyncGenerator<LogEvent> {
    const pattern = this.#globs[service];
    if (!pattern) return;
    const files = await guard(SOURCE, `listing ${pattern}`, () => glob(pattern, { absolute: true, onlyFiles: true }));
    // A configured location with no files is a broken mount or a typo, not a quiet service:
    // reading it as "no events" would turn an outage into a pass.
    if (files.length === 0) {
      throw sourceUnavailable(SOURCE, 'not_found', `no files match ${pattern} (sources.logs.files.${service})`);
    }
    files.sort();
    const reads: AsyncIterable<LogEvent>[] = [];
    for (const file of files) {
      let id: string;
      let size: number;
      try {
        const st = await stat(file, { bigint: true });
        id = `${st.dev}:${st.ino}`;
        size = Number(st.size);
      } catch (e) {
        // A file rotated away between listing and reading is not an outage.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw wrapSourceError(SOURCE, `reading ${file}`, e);
      }
      if (next.files[id]) continue; // the same file under two names (a hard link)
      const from = after?.files[id];
      reads.push(this.#readFile(service, file, id, size, from, q, next));
    }
    // Many files are read side by side: keep each one's buffer small.
    yield* mergeByTime(reads);
  }

  async *#readFile(service: string, file: string, id: string, size: number, from: FilePosition | undefined, q: LogQuery, next: FilesAt): AsyncGenerator<LogEvent> {
    const since = q.since.getTime();
    const until = q.until?.getTime() ?? Infinity;
    const needle = q.event ? `"${q.event}"` : undefined;
    try {
      let start = 0;
      let firstLine = 1;
      let head: FilePosition | undefined;
      if (from && Number.isSafeInteger(from.offset) && from.offset <= size && from.headLen <= size) {
        // Resume only the same file: not one truncated below the position, not a new file that got the inode.
        if (from.headLen === 0 || (await headHash(file, from.headLen)) === from.head) {
          start = from.offset;
          firstLine = from.line;
          head = from;
        }
      }
      const progress: LineProgress = { end: start, line: firstLine - 1 };
      const onSkip = (k: number) => {
        this.#stats.linesRead += k;
        this.#stats.linesIgnored += k;
      };
      const mustContain = needle ? Buffer.from(needle, 'utf8') : undefined;
      for await (const { line, n } of readLines(file, MAX_LINE_BYTES, () => this.#stats.linesIgnored++, { start, firstLine, progress, highWaterMark: 64 * 1024, mustContain, onSkip })) {
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
        yield ev;
      }
      // From after the last complete line: a trailing partial line is read again next time.
      const headLen = Math.min(HEAD_BYTES, progress.end);
      next.files[id] = {
        offset: progress.end,
        line: progress.line + 1,
        headLen,
        head: head && head.headLen === headLen ? head.head : await headHash(file, headLen),
      };
    } catch (e) {
      if (isAuditError(e)) throw e;
      const err = e as NodeJS.ErrnoException;
      // A file rotated away between listing and reading is not an outage.
      if (err.code === 'ENOENT') return;
      throw wrapSourceError(SOURCE, `reading ${file}`, e);
    }
  }
}
