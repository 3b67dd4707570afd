/**
 * Audit rows as `COPY (SELECT id, created_at, action, payload, prev_hash, row_hash, signature,
 * key_fingerprint …) TO STDOUT (FORMAT binary)` sends them (RawAuditRows), decoded into the
 * AuditRow the parsed reader gives for the same row — the same values, the same errors —
 * so whichever way the rows came, verification sees the same thing.
 *
 * The tuples: a 16-bit field count, then per field a 32-bit length (-1: NULL) and the bytes.
 * `id` is int2/int4/int8, `created_at` a timestamptz as microseconds since 2000-01-01 UTC,
 * text columns their UTF-8 bytes, jsonb a version byte (1) and the JSON text, json the text.
 * Kept free of other imports than core's errors and untrusted: it may be loaded on a worker thread.
 */
import { badData } from './errors';
import { untrusted } from './untrusted';
import type { AuditRow, RawAuditRows } from './sources';

const SOURCE = 'postgres';
const FIELDS = 8;
const EPOCH_2000_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;
/** timestamptz's 'infinity' and '-infinity': not a point in time. */
const INFINITY_HI = 0x7fffffff;
const NEG_INFINITY_HI = -0x80000000;

/** Microseconds to whole milliseconds, rounded down, for instants too far from 2000 for a double. */
function floorMs(us: bigint): number {
  const q = us / 1000n;
  return Number(us % 1000n < 0n ? q - 1n : q);
}

/** The fixed shapes (as the parsed reader gates them): hostile text becomes a stand-in. */
const HASH_SHAPE = /^[0-9a-f]{64}$/;
const FINGERPRINT_SHAPE = /^sha256:[0-9a-f]{64}$/;

/** Whether `len` bytes at `at` are lowercase hex digits. */
function isHex(buf: Buffer, at: number, len: number): boolean {
  for (let i = at; i < at + len; i++) {
    const c = buf[i];
    if (c < 48 || (c > 57 && c < 97) || c > 102) return false;
  }
  return true;
}

/** A row or root hash: read straight when it has the shape (the common case), else through the gate. */
function hashField(buf: Buffer, at: number, len: number): string {
  if (len === 64 && isHex(buf, at, 64)) return buf.toString('latin1', at, at + 64);
  return untrusted.shaped(len < 0 ? '' : buf.toString('utf8', at, at + len), HASH_SHAPE);
}

/** `sha256:` and 64 hex digits: read straight when it has the shape, else through the gate. */
function fingerprintField(buf: Buffer, at: number, len: number): string {
  if (len === 71 && buf.toString('latin1', at, at + 7) === 'sha256:' && isHex(buf, at + 7, 64)) return buf.toString('latin1', at, at + 71);
  return untrusted.shaped(len < 0 ? '' : buf.toString('utf8', at, at + len), FINGERPRINT_SHAPE);
}

/** A buffer's bytes (no copy). */
export function bytes(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Where COPY's header ends and its tuples begin (11-byte signature, flags, extension). */
export function copyHeaderLength(buf: Buffer): number {
  if (buf.length < 19 || buf.toString('latin1', 0, 11) !== 'PGCOPY\n\xff\r\n\0') throw badData(SOURCE, 'COPY output', 'not in PostgreSQL binary COPY format');
  return 19 + buf.readInt32BE(15);
}

function readId(buf: Buffer, at: number, len: number, table: string): number {
  let n: number;
  if (len === 8) {
    const hi = buf.readInt32BE(at);
    n = hi * TWO_32 + buf.readUInt32BE(at + 4);
    // Beyond 2^53 the sum above is not exact: not an id either way.
    if (hi >= 0x200000 || hi < -0x200000) n = NaN;
  } else if (len === 4) n = buf.readInt32BE(at);
  else if (len === 2) n = buf.readInt16BE(at);
  else n = NaN;
  if (!Number.isSafeInteger(n)) throw badData(SOURCE, `${table} row`, 'id is not an integer within 2^53');
  return n;
}

/**
 * The row count, the last id and the last row_hash of a batch of tuples, without decoding
 * the rest: what the reading thread needs to ask for the next batch. Ids are checked as the
 * parsed reader checks them.
 */
export function scanAuditTuples(data: Uint8Array, table: string): { rows: number; lastId: number; lastRowHash: string } {
  const buf = bytes(data);
  let rows = 0;
  let lastId = 0;
  /** The last row's row_hash field (read as a string once, at the end). */
  let hashAt = -1;
  let hashLen = 0;
  let p = 0;
  while (p < buf.length) {
    if (buf.readInt16BE(p) !== FIELDS) throw badData(SOURCE, `${table} row`, `expected ${FIELDS} columns in COPY output`);
    p += 2;
    for (let f = 0; f < FIELDS; f++) {
      const len = buf.readInt32BE(p);
      p += 4;
      if (f === 0) lastId = len < 0 ? readId(buf, p, -1, table) : readId(buf, p, len, table);
      else if (f === 5) {
        hashAt = p;
        hashLen = len;
      }
      if (len > 0) p += len;
    }
    if (p > buf.length) throw badData(SOURCE, `${table} row`, 'COPY output ends inside a row');
    rows++;
  }
  return { rows, lastId, lastRowHash: hashAt < 0 ? '' : hashField(buf, hashAt, hashLen) };
}

/** The rows of a raw batch, exactly as the parsed reader builds them (same values, same errors). */
export function decodeAuditRows(batch: Pick<RawAuditRows, 'data' | 'payload' | 'table'>): AuditRow[] {
  const buf = bytes(batch.data);
  const out: AuditRow[] = [];
  const cursor = { p: 0 };
  while (cursor.p < buf.length) out.push(decodeAuditRow(buf, cursor, batch.payload, batch.table));
  return out;
}

/**
 * The row whose tuple starts at `cursor.p` (decodeAuditRows() for one row); `cursor.p` moves
 * past it. Throws what decodeAuditRows() throws for that row.
 */
export function decodeAuditRow(buf: Buffer, cursor: { p: number }, payloadKind: RawAuditRows['payload'], table: string): AuditRow {
  let p = cursor.p;
  /** The current field: start and length (-1: NULL). */
  let at = 0;
  let len = 0;
  const next = () => {
    len = buf.readInt32BE(p);
    at = p + 4;
    p = len > 0 ? at + len : at;
  };
  const text = () => (next(), len < 0 ? '' : buf.toString('utf8', at, at + len));
  if (buf.readInt16BE(p) !== FIELDS) throw badData(SOURCE, `${table} row`, `expected ${FIELDS} columns in COPY output`);
  p += 2;
  next();
  const id = readId(buf, at, len, table);
  next();
  let createdAt: Date | undefined;
  if (len === 8) {
    const hi = buf.readInt32BE(at);
    if (hi !== INFINITY_HI && hi !== NEG_INFINITY_HI) {
      const us = hi * TWO_32 + buf.readUInt32BE(at + 4);
      // Whole milliseconds, rounded down (the parsed reader truncates the fraction of the
      // second, which is never negative): exact while |us| < 2^53 (±285 years from 2000).
      const ms = Number.isSafeInteger(us) ? Math.floor(us / 1000) : floorMs(buf.readBigInt64BE(at));
      const d = new Date(EPOCH_2000_MS + ms);
      if (!Number.isNaN(d.getTime())) createdAt = d;
    }
  }
  if (!createdAt) throw badData(SOURCE, `${table} row id=${id}`, 'timestamp is missing or invalid');
  const action = text();
  next();
  let payload: unknown = null;
  if (len >= 0) {
    const from = payloadKind === 'jsonb' ? at + 1 : at;
    if (payloadKind === 'jsonb' && buf[at] !== 1) throw badData(SOURCE, `${table} row id=${id}`, `unsupported jsonb format version ${buf[at]}`);
    payload = JSON.parse(buf.toString('utf8', from, at + len));
  }
  next();
  const prevHash = hashField(buf, at, len);
  next();
  const rowHash = hashField(buf, at, len);
  const signature = text();
  next();
  const keyFingerprint = fingerprintField(buf, at, len);
  cursor.p = p;
  return { id, createdAt, action, payload, prevHash, rowHash, signature, keyFingerprint };
}
