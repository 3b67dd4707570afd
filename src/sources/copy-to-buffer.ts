/**
 * `COPY … TO STDOUT` read into one buffer, for the receipt-chain pass's raw batches.
 *
 * pg-copy-streams' CopyStreamQuery takes over the connection's socket for the COPY and gives
 * it back to pg at the end, or at an ErrorResponse; this keeps all of that. What changes is what
 * happens to each CopyData message: the library makes a Buffer of it (a slice, and a copy when
 * it spans two reads of the socket), queues it, joins the queue into another Buffer per read
 * and pushes that through a Readable; the batch then copied those once more into its own
 * buffer. Postgres sends a message per row, so that was several objects and three copies a
 * row on the thread that, in the daemon, also feeds the workers and serves nothing else while
 * it does. Here the socket's bytes are walked once, and each message's content is copied
 * straight into the batch's buffer: no object per row. The Readable only ends.
 *
 * The buffer is this module's own (never Node's shared pool), at most an eighth larger than
 * what it holds (that eighth zeroed), so the caller may transfer it to another thread.
 */
import { to as copyTo } from 'pg-copy-streams';

// pg-copy-streams' decoder states and message codes (its copy-to.js and message-formats.js).
const PG_CODE = 0;
const PG_LENGTH = 1;
const PG_MESSAGE = 2;
const ERROR_RESPONSE = 0x45;
const COPY_DATA = 0x64;
const COPY_OUT_RESPONSE = 0x48;
const PARAMETER_STATUS = 0x53;
const NOTICE_RESPONSE = 0x4e;
const NOTIFICATION_RESPONSE = 0x41;

/** The parts of pg-copy-streams' CopyStreamQuery this subclass works with (it ships no types). */
interface CopyStreamInternals {
  _state: number;
  _code: number;
  _unreadMessageContentLength: number;
  _buffer: { push(b: Buffer): void };
  _detach(): void;
  _cleanup(): void;
  push(chunk: Buffer | null): boolean;
}

type CopyStreamCtor = new (text: string, options?: object) => CopyStreamInternals & NodeJS.ReadableStream;

/** A COPY TO query whose data lands in one growing buffer; `bytes()` once it has ended. */
export interface CopyToBufferQuery extends NodeJS.ReadableStream {
  /** pg's Submittable: the client hands it the connection. */
  submit(connection: unknown): void;
  destroy(): void;
  /** Everything the server sent as CopyData, in order (a view of this query's own buffer). */
  bytes(): Uint8Array;
}

/**
 * A submittable for `client.query()`: COPY … TO STDOUT whose data is gathered into one buffer.
 * `sizeHint`: bytes expected (the buffer starts that large and doubles when it must).
 */
export function copyToBuffer(sql: string, sizeHint = 64 * 1024): CopyToBufferQuery {
  return new CopyToBuffer(sql, sizeHint) as unknown as CopyToBufferQuery;
}

/**
 * A buffer of its own (an ArrayBuffer of exactly n bytes, never Node's shared pool), not
 * zeroed first: every byte up to the length is written before it is read, and bytes() zeroes
 * the rest. Zeroing half a megabyte per batch, only to overwrite it, was about a tenth of the
 * samples on this thread in a pass (perf, 100 000 rows) and 4–7 % of its CPU time measured
 * before and after (650–750 against 700–820 ms).
 */
function unzeroed(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

// The base class is pg-copy-streams' own CopyStreamQuery (the package exports only a factory
// for it); only its CopyData handling is replaced.
const Base = Object.getPrototypeOf(copyTo('')).constructor as CopyStreamCtor;

class CopyToBuffer extends Base {
  #out: Uint8Array;
  #len = 0;
  /** Bytes of the message length read so far (a length may span two reads of the socket). */
  #lengthBytes = 0;
  #length = 0;

  constructor(text: string, sizeHint: number) {
    super(text);
    this.#out = unzeroed(Math.max(1024, sizeHint));
  }

  bytes(): Uint8Array {
    // The buffer may go whole to another thread: no more than an eighth of it unused, and that
    // eighth zeroed (it was never written: memory this process used before).
    if (this.#out.length - this.#len > this.#len >> 3) this.#out = this.#out.slice(0, this.#len);
    else this.#out.fill(0, this.#len);
    return this.#out.subarray(0, this.#len);
  }

  #append(chunk: Buffer, from: number, to: number): void {
    const need = this.#len + (to - from);
    if (need > this.#out.length) {
      const grown = unzeroed(Math.max(need, this.#out.length * 2));
      grown.set(this.#out.subarray(0, this.#len));
      this.#out = grown;
    }
    chunk.copy(this.#out, this.#len, from, to);
    this.#len = need;
  }

  /** Replaces CopyStreamQuery._parse: the same state machine, over the chunk's bytes in place. */
  _parse(chunk: Buffer): boolean {
    const n = chunk.length;
    let p = 0;
    let done = false;
    while (!done && p < n) {
      if (this._state === PG_CODE) {
        const code = chunk[p];
        if (code === ERROR_RESPONSE) {
          // As the library does: pg reads the error (and what follows) and fails the query.
          this._buffer.push(chunk.subarray(p));
          this._detach();
          return false;
        }
        this._code = code;
        p++;
        this._state = PG_LENGTH;
        this.#lengthBytes = 0;
        this.#length = 0;
      }
      if (this._state === PG_LENGTH) {
        while (this.#lengthBytes < 4 && p < n) {
          this.#length = this.#length * 256 + chunk[p++];
          this.#lengthBytes++;
        }
        if (this.#lengthBytes < 4) break;
        this._unreadMessageContentLength = this.#length - 4;
        this._state = PG_MESSAGE;
      }
      if (this._state === PG_MESSAGE) {
        const take = Math.min(n - p, this._unreadMessageContentLength);
        if (take > 0) {
          if (this._code === COPY_DATA) this.#append(chunk, p, p + take);
          p += take;
          this._unreadMessageContentLength -= take;
        }
        if (this._unreadMessageContentLength === 0) {
          const c = this._code;
          // Messages that may come amid the data (protocol flow, COPY); anything else ends it.
          if (c !== COPY_OUT_RESPONSE && c !== COPY_DATA && c !== PARAMETER_STATUS && c !== NOTICE_RESPONSE && c !== NOTIFICATION_RESPONSE) done = true;
          this._state = PG_CODE;
        }
      }
    }
    if (done) {
      // What follows CopyDone (CommandComplete, ReadyForQuery) is pg's.
      if (p < n) this._buffer.push(chunk.subarray(p));
      this._detach();
      this.push(null);
      this._cleanup();
      // Stop reading the socket: the rest is pg's.
      return false;
    }
    return true;
  }
}
