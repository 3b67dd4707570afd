/**
 * A raw batch of audit rows (the server's bytes, RawAuditRows) checked on the check's thread:
 * prepareRawRows() up to the signatures (which go to the pool's workers), its finish() after
 * them; verifyRawRows() does both in one go. The verdict is exactly
 * that of decoding the rows as the parsed reader gives them, then prepareBatch(), the
 * signatures and finishBatch() (verifyRawRowsByObjects() does just that; a test holds the two
 * to the same verdicts). Bad data in a row comes back as the message the parsed reader throws.
 *
 * Most rows take a path over the bytes themselves, with no string or object per row: hashes
 * and signatures are decoded from their text straight into the packed signature work, the
 * canonical form is written byte to byte (canonical-bytes.ts) and hashed in one buffer, links
 * are compared as bytes. A row that path cannot vouch for — any problem at all, a field of an
 * unusual shape or type, a payload the byte canonicaliser declines — is decoded and checked
 * the object way, in its place; and only the rows a finding or a tally names are decoded to
 * build the verdict.
 */
import * as crypto from 'node:crypto';
import { bytes, decodeAuditRow, decodeAuditRows } from '../../src/core/raw-audit-rows';
import { ErrorCodes, isAuditError } from '../../src/core/errors';
import type { AuditRow, RawAuditRows } from '../../src/core/sources';
import { BatchState, finishBatch, finishRows, prepareBatch, verifyWork, type Anchor, type ChunkVerdict, type SignatureWork } from './chain-verify';
import { GENESIS_HASH, ROW_HASH_RE } from './canonical';
import { canonicalPayloadInto } from './canonical-bytes';
import type { KeyRing } from './ed25519';
import { SIG, WORK_STRIDE } from './signature-work';

export interface RawRowsTask extends Pick<RawAuditRows, 'data' | 'payload' | 'table'> {
  anchor: Anchor;
  /** Ids whose row_hash the verdict carries. */
  want: number[];
}

export type RawRowsResult = ChunkVerdict | { badData: string };

type Verify = (slot: number, message: Uint8Array, signature: Uint8Array) => boolean;

function asBadData(e: unknown): { badData: string } {
  if (isAuditError(e) && e.code === ErrorCodes.BAD_DATA) return { badData: e.message };
  throw e;
}

/** The verdict by decoding every row into objects first: what verifyRawRows() must equal. */
export function verifyRawRowsByObjects(task: RawRowsTask, keys: Pick<KeyRing, 'slot'>, verify: Verify): RawRowsResult {
  let rows: AuditRow[];
  try {
    rows = decodeAuditRows(task);
  } catch (e) {
    return asBadData(e);
  }
  const b = prepareBatch(rows, task.anchor, keys);
  const verdict = finishBatch(b, verifyWork(b.work, verify));
  const targets: [number, string][] = [];
  if (task.want.length > 0) {
    const want = new Set(task.want);
    for (const r of rows) if (want.has(r.id)) targets.push([r.id, r.rowHash]);
  }
  return { ...verdict, targets };
}

// ------------------------------------------------------------------ the byte path

const FIELDS = 8;
const EPOCH_2000_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;
/** ±8.64e15 ms: the range of a Date. */
const MAX_DATE_MS = 8.64e15;

/** Lowercase hex digit values (-1: not one). */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x61 + c] = 10 + c;
/** Base64 digit values (-1: not one). */
const B64 = new Int8Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((ch, i) => (B64[ch.charCodeAt(0)] = i));

const HEAD_ACTION = Buffer.from('{"action":"', 'latin1');
const HEAD_CREATED = Buffer.from('","created_at":"', 'latin1');
const HEAD_ID = Buffer.from('","id":', 'latin1');
const HEAD_PAYLOAD = Buffer.from(',"payload":', 'latin1');
const FP_PREFIX = Buffer.from('sha256:', 'latin1');

interface Sha256 {
  /** SHA-256 of `data` into `out` (32 bytes). */
  (out: Buffer, data: Buffer): void;
}

const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

/**
 * SHA-256 into a buffer of ours. node:crypto's one-shot crypto.hash() with its digest as a
 * latin1 ('binary') string (OpenSSL, with the CPU's SHA instructions where it has them, and no Buffer per
 * row) where this Node has it; else libsodium's crypto_hash_sha256 (no allocation per row);
 * else a Hash object. Measured over 330 bytes (a row's usual size) on this project's machine:
 * 0.54 µs, 1.80 µs and 1.73 µs.
 */
function loadSha256(): Sha256 {
  // Absent before Node 20.12. 'binary' is latin1: a character per byte.
  const oneShot = crypto.hash as typeof crypto.hash | undefined;
  if (typeof oneShot === 'function') {
    try {
      const f: Sha256 = (out, data) => {
        const d = oneShot('sha256', data, 'binary');
        for (let k = 0; k < 32; k++) out[k] = d.charCodeAt(k);
      };
      const probe = Buffer.alloc(32);
      f(probe, Buffer.from('abc'));
      if (probe.toString('hex') === ABC_SHA256) return f;
    } catch {
      // libsodium below.
    }
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const s = require('sodium-native') as { crypto_hash_sha256?: (out: Buffer, data: Buffer) => void };
    if (typeof s.crypto_hash_sha256 === 'function') {
      const f = s.crypto_hash_sha256;
      const probe = Buffer.alloc(32);
      f(probe, Buffer.from('abc'));
      if (probe.toString('hex') === ABC_SHA256) return (out, data) => f(out, data);
    }
  } catch {
    // node:crypto below.
  }
  return (out, data) => {
    crypto.createHash('sha256').update(data).digest().copy(out);
  };
}

let sha256: Sha256 | undefined;
/** Where a row's `prev_hash + canonical` is written to be hashed (grown for a large row). */
let hashInput = Buffer.allocUnsafe(64 * 1024);
/** hashInput's first n bytes, by n: no view made per row. */
let hashViews: Buffer[] = [];
const digest = Buffer.alloc(32);
const rowDigest = Buffer.alloc(32);
const NULL_TEXT = Buffer.from('null', 'latin1');

function hashView(n: number): Buffer {
  return (hashViews[n] ??= hashInput.subarray(0, n));
}

/** Copies src[from, to) into dst at `at`; returns where it ends. Short runs in a loop (cheaper than a native call). */
function copyBytes(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): number {
  if (to - from > 64) return at + (src as Buffer).copy(dst, at, from, to);
  for (let k = from; k < to; k++) dst[at++] = src[k];
  return at;
}

/** The decimal digits of a safe integer (String(n)). */
function writeInteger(n: number, dst: Uint8Array, at: number): number {
  if (n < 0) {
    dst[at++] = 0x2d;
    n = -n;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let k = digits - 1; k >= 0; k--) {
    dst[at + k] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

function two(v: number, dst: Uint8Array, at: number): number {
  dst[at] = 0x30 + Math.floor(v / 10);
  dst[at + 1] = 0x30 + (v % 10);
  return at + 2;
}

/**
 * Date.prototype.toISOString() of `ms` (`YYYY-MM-DDTHH:mm:ss.sssZ`) for the years 0–9999, from
 * the civil calendar (H. Hinnant's days-to-civil); other years through Date itself.
 */
export function writeIsoDate(ms: number, dst: Uint8Array, at: number): number {
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  if (y < 0 || y > 9999) return at + (dst as Buffer).write(new Date(ms).toISOString(), at, 'latin1');
  at = two(Math.floor(y / 100), dst, at);
  at = two(y % 100, dst, at);
  dst[at++] = 0x2d;
  at = two(m, dst, at);
  dst[at++] = 0x2d;
  at = two(d, dst, at);
  dst[at++] = 0x54;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const mi = Math.floor(rest / 60_000);
  rest -= mi * 60_000;
  const sec = Math.floor(rest / 1000);
  const milli = rest - sec * 1000;
  at = two(h, dst, at);
  dst[at++] = 0x3a;
  at = two(mi, dst, at);
  dst[at++] = 0x3a;
  at = two(sec, dst, at);
  dst[at++] = 0x2e;
  dst[at++] = 0x30 + Math.floor(milli / 100);
  at = two(milli % 100, dst, at);
  dst[at++] = 0x5a;
  return at;
}

/** Decodes 64 lowercase hex digits into 32 bytes; false when they are not. */
function hex32(src: Buffer, at: number, out: Uint8Array, to: number): boolean {
  for (let k = 0; k < 32; k++) {
    const hi = HEX[src[at + 2 * k]];
    const lo = HEX[src[at + 2 * k + 1]];
    if ((hi | lo) < 0) return false;
    out[to + k] = (hi << 4) | lo;
  }
  return true;
}

function isHex64(src: Buffer, at: number): boolean {
  for (let k = at; k < at + 64; k++) if (HEX[src[k]] < 0) return false;
  return true;
}

/**
 * Decodes a signature as KeyRing.wellFormed() accepts it (86 base64 digits and `==`, 88 bytes)
 * into 64 bytes, as Buffer's base64 decoder does; false when it is not well formed.
 */
function signature64(src: Buffer, at: number, len: number, out: Uint8Array, to: number): boolean {
  if (len !== 88 || src[at + 86] !== 0x3d || src[at + 87] !== 0x3d) return false;
  let o = to;
  for (let k = 0; k < 84; k += 4) {
    const a = B64[src[at + k]];
    const b = B64[src[at + k + 1]];
    const c = B64[src[at + k + 2]];
    const d = B64[src[at + k + 3]];
    if ((a | b | c | d) < 0) return false;
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 15) << 4) | (c >> 2);
    out[o++] = ((c & 3) << 6) | d;
  }
  const a = B64[src[at + 84]];
  const b = B64[src[at + 85]];
  if ((a | b) < 0) return false;
  out[o] = (a << 2) | (b >> 4);
  return true;
}

function sameBytes(a: Buffer, at: number, b: Buffer, bt: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[at + k] !== b[bt + k]) return false;
  return true;
}

/** Fingerprints seen in this batch and their slots: a byte comparison instead of a string per row. */
class SlotCache {
  readonly #seen: { bytes: Buffer; slot: number | undefined }[] = [];
  constructor(readonly keys: Pick<KeyRing, 'slot'>) {}

  /** The slot of the 71-byte fingerprint at `at` (already checked to have the shape). */
  slot(src: Buffer, at: number): number | undefined {
    for (const s of this.#seen) if (sameBytes(s.bytes, 0, src, at, 71)) return s.slot;
    const fp = src.toString('latin1', at, at + 71);
    const slot = this.keys.slot(fp);
    if (this.#seen.length < 32) this.#seen.push({ bytes: Buffer.from(fp, 'latin1'), slot });
    return slot;
  }
}

/**
 * Links, hashes and signatures of a raw batch: exactly verifyRawRowsByObjects()'s verdict.
 */
export function verifyRawRows(task: RawRowsTask, keys: Pick<KeyRing, 'slot'>, verify: Verify): RawRowsResult {
  const p = prepareRawRows(task, keys);
  return 'badData' in p ? p : p.finish(verifyWork(p.work, verify));
}

/** The state of the byte path over one batch; fastRow() reads a row into it. */
interface Walk {
  readonly buf: Buffer;
  readonly end: number;
  readonly jsonb: boolean;
  readonly st: BatchState;
  readonly slots: SlotCache;
  readonly hash: Sha256;
  /** Per row: its id, and where its row_hash field starts (-1: not 64 hex digits, or decoded). */
  ids: Float64Array;
  hashAt: Int32Array;
  /** The previous row's row_hash as 64 hex digits: in `prevSrc` at `prevAt` (null: not of that shape). */
  prevSrc: Buffer | null;
  prevAt: number;
}

function newWalk(buf: Buffer, end: number, jsonb: boolean, st: BatchState, slots: SlotCache, hash: Sha256, prevSrc: Buffer | null): Walk {
  return { buf, end, jsonb, st, slots, hash, ids: new Float64Array(1024), hashAt: new Int32Array(1024), prevSrc, prevAt: 0 };
}

// One walk of nothing, made as the module loads: the shape's fields hold any value from the
// start. V8 otherwise narrows each field to the kind of value the first walks held, widens it
// some batches later, and throws away fastRow() and hashHolds() as compiled for the narrow
// shape, to compile them again (traced with node's --trace-deopt and --trace-generalization:
// once per worker per run, about 70 ms of compiling each time).
newWalk(null as unknown as Buffer, 0, false, null as unknown as BatchState, null as unknown as SlotCache, null as unknown as Sha256, null);

/** The fields of the tuple fastRow() reads: start and length (-1: NULL). */
const fAt = new Int32Array(FIELDS);
const fLen = new Int32Array(FIELDS);

/**
 * Row `i`, whose tuple starts at `p`, the byte way: where its tuple ends when the row is of the
 * usual shape and its link and hash hold (its signature packed, or its outcome set, and the
 * walk moved past it); -1 when not — nothing of the walk changed, and the row is for the
 * object way. A function of its own (not the loop's body) so that V8 compiles it once, small.
 */
function fastRow(w: Walk, i: number, p: number): number {
  const buf = w.buf;
  const end = w.end;
  const st = w.st;
  if (p + 2 > end || buf.readInt16BE(p) !== FIELDS) return -1;
  let q = p + 2;
  for (let f = 0; f < FIELDS; f++) {
    if (q + 4 > end) return -1;
    const len = buf.readInt32BE(q);
    fAt[f] = q + 4;
    fLen[f] = len;
    q = q + 4 + (len > 0 ? len : 0);
  }
  if (q > end) return -1;
  // id (int8), created_at (timestamptz) in range.
  if (fLen[0] !== 8 || fLen[1] !== 8) return -1;
  const hi = buf.readInt32BE(fAt[0]);
  if (hi >= 0x200000 || hi < -0x200000) return -1;
  const id = hi * TWO_32 + buf.readUInt32BE(fAt[0] + 4);
  const th = buf.readInt32BE(fAt[1]);
  const us = th * TWO_32 + buf.readUInt32BE(fAt[1] + 4);
  if (th === 0x7fffffff || th === -0x80000000 || !Number.isSafeInteger(us)) return -1;
  const ms = EPOCH_2000_MS + Math.floor(us / 1000);
  if (!Number.isSafeInteger(id) || !(ms >= -MAX_DATE_MS && ms <= MAX_DATE_MS)) return -1;
  // prev_hash, row_hash: 64 hex digits; key_fingerprint `sha256:` and 64; action plain ASCII; jsonb version 1.
  if (fLen[4] !== 64 || fLen[5] !== 64 || !isHex64(buf, fAt[4]) || !hex32(buf, fAt[5], rowDigest, 0)) return -1;
  if (fLen[7] !== 71 || !sameBytes(buf, fAt[7], FP_PREFIX, 0, 7) || !isHex64(buf, fAt[7] + 7)) return -1;
  const aAt = fAt[2];
  const aLen = fLen[2];
  if (aLen < 0) return -1;
  for (let k = aAt; k < aAt + aLen; k++) {
    const c = buf[k];
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
  }
  if (w.jsonb && fLen[3] >= 0 && (fLen[3] < 1 || buf[fAt[3]] !== 1)) return -1;
  // The link to the row before.
  if (st.atStart || st.prevKnown) {
    if (w.prevSrc === null || !sameBytes(buf, fAt[4], w.prevSrc, st.atStart ? 0 : w.prevAt, 64)) return -1;
  }
  // The row's hash: SHA-256 of prev_hash and the canonical form, against row_hash.
  if (!hashHolds(w, id, ms)) return -1;
  // Clean so far: the signature's outcome, or its work.
  const slot = w.slots.slot(buf, fAt[7]);
  if (slot === undefined) st.sig[i] = SIG.unknownKey;
  else {
    const at = st.count * WORK_STRIDE;
    if (signature64(buf, fAt[6], fLen[6], st.data, at + 34)) {
      st.data[at] = slot & 0xff;
      st.data[at + 1] = slot >> 8;
      st.data.set(rowDigest, at + 2);
      st.workRows[st.count++] = i;
      st.sig[i] = SIG.valid;
    } else st.sig[i] = SIG.malformed;
  }
  st.problems[i] = undefined;
  w.ids[i] = id;
  w.hashAt[i] = fAt[5];
  st.n++;
  st.atStart = false;
  st.prevKnown = true;
  st.prevId = id;
  w.prevSrc = buf;
  w.prevAt = fAt[5];
  return q;
}

/** Whether SHA-256 of the row's prev_hash and canonical form (fields in fAt/fLen) is its row_hash (in rowDigest). */
function hashHolds(w: Walk, id: number, ms: number): boolean {
  const buf = w.buf;
  const payloadLen = fLen[3] < 0 ? 4 : fLen[3];
  const need = 64 + 128 + fLen[2] + 2 * payloadLen + 64;
  if (hashInput.length < need) {
    hashInput = Buffer.allocUnsafe(Math.max(need, hashInput.length * 2));
    hashViews = [];
  }
  const h = hashInput;
  let o = copyBytes(buf, fAt[4], fAt[4] + 64, h, 0);
  o = copyBytes(HEAD_ACTION, 0, HEAD_ACTION.length, h, o);
  o = copyBytes(buf, fAt[2], fAt[2] + fLen[2], h, o);
  o = copyBytes(HEAD_CREATED, 0, HEAD_CREATED.length, h, o);
  o = writeIsoDate(ms, h, o);
  o = copyBytes(HEAD_ID, 0, HEAD_ID.length, h, o);
  o = writeInteger(id, h, o);
  o = copyBytes(HEAD_PAYLOAD, 0, HEAD_PAYLOAD.length, h, o);
  if (fLen[3] < 0) o = copyBytes(NULL_TEXT, 0, 4, h, o);
  else o = canonicalPayloadInto(buf, w.jsonb ? fAt[3] + 1 : fAt[3], fAt[3] + fLen[3], h, o);
  if (o < 0 || o >= h.length) return false;
  h[o++] = 0x7d;
  w.hash(digest, hashView(o));
  return sameBytes(digest, 0, rowDigest, 0, 32);
}

/** A raw batch on the byte path up to its signatures: the signatures packed, and the verdict once their outcomes come. */
interface Prepared {
  work: SignatureWork;
  /** The verdict, given verifyWork()'s outcomes for `work` in order; throws a row's bad data as decoding it does. */
  finish(outcomes: Uint8Array): ChunkVerdict;
}

/**
 * A raw batch checked up to its signatures — decoded, hashed and linked on this thread — with
 * the signatures packed in `work` for another thread to verify (verifyWork()); `finish` takes
 * their outcomes and gives what verifyRawRows() gives. Bad data in a row: its message, as the
 * parsed reader gives it, from either step.
 */
export interface PreparedRawRows {
  work: SignatureWork;
  finish(outcomes: Uint8Array): RawRowsResult;
}

export function prepareRawRows(task: RawRowsTask, keys: Pick<KeyRing, 'slot'>): PreparedRawRows | { badData: string } {
  try {
    const p = prepareBytes(task, keys);
    return {
      work: p.work,
      finish: (outcomes) => {
        try {
          return p.finish(outcomes);
        } catch (e) {
          return asBadData(e);
        }
      },
    };
  } catch (e) {
    return asBadData(e);
  }
}

function prepareBytes(task: RawRowsTask, keys: Pick<KeyRing, 'slot'>): Prepared {
  const buf = bytes(task.data);
  const end = buf.length;
  const anchor = task.anchor;
  const st = new BatchState(anchor, keys, 1024);
  let prevSrc: Buffer | null = null;
  if (anchor && ROW_HASH_RE.test(anchor.rowHash)) prevSrc = Buffer.from(anchor.rowHash, 'latin1');
  else if (anchor === null) prevSrc = Buffer.from(GENESIS_HASH, 'latin1');
  const w = newWalk(buf, end, task.payload === 'jsonb', st, new SlotCache(keys), (sha256 ??= loadSha256()), prevSrc);
  /** Per row: where its tuple starts, or the row decoded. */
  let starts = new Int32Array(1024);
  const decoded = new Map<number, AuditRow>();
  /** prepareBatch() decodes every row before it checks any: an error of its own waits for the decoding's. */
  let deferred: { e: unknown } | undefined;
  const cursor = { p: 0 };
  let p = 0;
  while (p < end) {
    const i = st.n;
    st.grow();
    if (i >= starts.length) {
      const s2 = new Int32Array(starts.length * 2);
      s2.set(starts);
      starts = s2;
      const i2 = new Float64Array(w.ids.length * 2);
      i2.set(w.ids);
      w.ids = i2;
      const h2 = new Int32Array(w.hashAt.length * 2);
      h2.set(w.hashAt);
      w.hashAt = h2;
    }
    starts[i] = p;
    const next = fastRow(w, i, p);
    if (next >= 0) {
      p = next;
      continue;
    }
    // The object way, for this row: decoded (its errors are the batch's), then checked as prepareBatch() does.
    cursor.p = p;
    const row = decodeAuditRow(buf, cursor, task.payload, task.table);
    p = cursor.p;
    decoded.set(i, row);
    w.ids[i] = row.id;
    w.hashAt[i] = -1;
    if (i > 0) st.prevHash = w.hashAt[i - 1] >= 0 ? buf.toString('latin1', w.hashAt[i - 1], w.hashAt[i - 1] + 64) : (decoded.get(i - 1) as AuditRow).rowHash;
    if (deferred) {
      st.after(row.id, row.rowHash);
    } else {
      try {
        st.add(row);
      } catch (e) {
        // Not a row's problem (those add() records): a failure prepareBatch() would have thrown.
        deferred = { e };
        st.problems[i] = undefined;
        st.after(row.id, row.rowHash);
      }
    }
    if (ROW_HASH_RE.test(row.rowHash)) {
      w.prevSrc = Buffer.from(row.rowHash, 'latin1');
      w.prevAt = 0;
    } else w.prevSrc = null;
  }
  if (deferred) throw deferred.e;
  const n = st.n;
  const { ids, hashAt } = w;
  const rowHashOf = (i: number) => (hashAt[i] >= 0 ? buf.toString('latin1', hashAt[i], hashAt[i] + 64) : (decoded.get(i) as AuditRow).rowHash);
  const rowAt = (i: number): AuditRow => {
    const known = decoded.get(i);
    if (known) return known;
    cursor.p = starts[i];
    return decodeAuditRow(buf, cursor, task.payload, task.table);
  };
  const work = st.work();
  const finish = (outcomes: Uint8Array): ChunkVerdict => {
    const last = n > 0 ? { id: ids[n - 1], rowHash: rowHashOf(n - 1) } : anchor;
    const verdict = finishRows(n, anchor, st.problems, st.sig.subarray(0, n), work, outcomes, (i) => ids[i], rowAt, last);
    const targets: [number, string][] = [];
    if (task.want.length > 0) {
      const want = new Set(task.want);
      for (let i = 0; i < n; i++) if (want.has(ids[i])) targets.push([ids[i], rowHashOf(i)]);
    }
    return { ...verdict, targets };
  };
  return { work, finish };
}
