/**
 * Verifying one batch of audit rows: links, hashes and signatures. Pure and synchronous —
 * inputs are the rows, the row the batch continues from and the key ring — so batches are
 * independent of each other: rows carry their own prev_hash, and a batch needs only the
 * last row of the batch before it (as read, not as verified) to check its first link. A
 * verify stage can therefore run batches in parallel and join the verdicts in id order.
 */
import type { AuditRow } from '../../src/core/sources';
import { CanonicalizationError, GENESIS_HASH, ROW_HASH_RE, expectedRowHash } from './canonical';
import { KeyRing } from './ed25519';
import { SIG, WORK_STRIDE, verifyWork, type SignatureWork } from './signature-work';
import { FINGERPRINT_RE } from './keys';
import { untrusted } from '../../src/core/untrusted';

export type RowProblemKind = 'chainBreak' | 'hashMismatch' | 'badSignature';

/** When a row has several problems, the finding names the most fundamental one. */
export const PROBLEM_PRIORITY: readonly RowProblemKind[] = ['chainBreak', 'hashMismatch', 'badSignature'];

export interface RowProblem {
  kind: RowProblemKind;
  detail: string;
}

/** A row as the next row links to it. */
export interface Link {
  id: number;
  rowHash: string;
}

/**
 * What a batch continues from: the row before it, `null` for the start of the chain (the
 * first row links to 64 zeros), or `undefined` when that row is not known (its link is then
 * not checked here; another pass over both rows checks it).
 */
export type Anchor = Link | null | undefined;

export interface BrokenRowVerdict {
  id: number;
  /** The row before it in the chain (null: the first row; undefined: not known). */
  prevId: number | null | undefined;
  createdAt: string;
  action: string;
  keyFingerprint: string;
  problems: RowProblem[];
}

export interface UnknownKeyTally {
  fingerprint: string;
  rows: number;
  firstId: number;
  lastId: number;
}

export interface BatchVerdict {
  rows: number;
  broken: BrokenRowVerdict[];
  /** Rows signed by a fingerprint the ring does not hold, per fingerprint. */
  unknownKeys: UnknownKeyTally[];
  /** The batch's last row: the anchor of the batch after it (the given anchor for an empty batch). */
  last: Anchor;
}

/** A chunk's verdict, with the row_hash of each wanted row it holds (the rows transparency roots name). */
export interface ChunkVerdict extends BatchVerdict {
  targets: [id: number, rowHash: string][];
}

/** The start of a hash read from a row (hostile text): shown only when it has a hash's shape. */
const short = (h: string) => (ROW_HASH_RE.test(h) ? `${h.slice(0, 16)}…` : untrusted.matching(h, ROW_HASH_RE));

/** The problem of a row whose prev_hash is not the row_hash of the row before it (`prevId`). */
export function linkProblem(rowPrevHash: string, prevId: number, prevRowHash: string): RowProblem {
  return { kind: 'chainBreak', detail: `prev_hash ${short(rowPrevHash)} ≠ row ${prevId}'s row_hash ${short(prevRowHash)}` };
}

export { SIG, WORK_STRIDE, verifyWork, type SignatureWork } from './signature-work';

/**
 * A batch checked for links and hashes, its signatures still to verify: `work` holds the
 * signatures to check (message, signature and key slot per row, packed into one buffer that
 * can be handed to a worker thread), `sig` the outcome per row (filled by whoever verifies
 * `work`: finishBatch() needs it complete).
 */
export interface PreparedBatch {
  rows: readonly AuditRow[];
  anchor: Anchor;
  /** Link and hash problems per row (undefined: none). */
  problems: (RowProblem[] | undefined)[];
  /** SIG value per row; rows in `work` are filled in by verifyWork(). */
  sig: Uint8Array;
  work: SignatureWork;
}

/**
 * Links and hashes of a batch (pure, synchronous), and its signatures packed for
 * verification. Together with verifyWork() and finishBatch() this is exactly verifyBatch():
 * split so the signatures — most of the work — can be verified on other cores while the
 * next batch is read and hashed.
 */
export function prepareBatch(rows: readonly AuditRow[], anchor: Anchor, keys: Pick<KeyRing, 'slot'>): PreparedBatch {
  const st = new BatchState(anchor, keys, rows.length);
  for (let i = 0; i < rows.length; i++) st.add(rows[i]);
  return { rows, anchor, problems: st.problems, sig: st.sig.subarray(0, st.n), work: st.work() };
}

/**
 * prepareBatch() a row at a time: the links and hashes checked so far, the signatures packed.
 * The raw-rows path adds most rows its own way (reserve() and after()) and the rest with add().
 */
export class BatchState {
  /**
   * Made from an array of values, not `[]`: V8 starts a `[]` as an array of small integers, and
   * once one batch has stored into it, makes the next batches' arrays of values from the start
   * — a shape the optimised code that stores into it (compiled against the first) has not
   * seen, so it is thrown away and compiled again (traced with node's --trace-deopt).
   */
  problems: (RowProblem[] | undefined)[] = [undefined].slice(1);
  sig: Uint8Array;
  data: Uint8Array;
  buf: Buffer;
  workRows: Uint32Array;
  /** Signatures packed. */
  count = 0;
  /** Rows added. */
  n = 0;
  // The row before (as `anchor` is, then each row read): no per-row object, a million rows a pass.
  prevKnown: boolean;
  prevId: number;
  prevHash: string;
  atStart: boolean;

  constructor(
    readonly anchor: Anchor,
    readonly keys: Pick<KeyRing, 'slot'>,
    capacity: number,
  ) {
    capacity = Math.max(1, capacity);
    this.sig = new Uint8Array(capacity);
    this.data = new Uint8Array(capacity * WORK_STRIDE);
    this.buf = Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    this.workRows = new Uint32Array(capacity);
    this.prevKnown = anchor !== undefined;
    this.prevId = anchor ? anchor.id : 0;
    this.prevHash = anchor ? anchor.rowHash : GENESIS_HASH;
    this.atStart = anchor === null;
  }

  /** Room for one more row (and its signature). */
  grow(): void {
    if (this.n < this.sig.length) return;
    const cap = this.sig.length * 2;
    const sig = new Uint8Array(cap);
    sig.set(this.sig);
    const data = new Uint8Array(cap * WORK_STRIDE);
    data.set(this.data);
    const workRows = new Uint32Array(cap);
    workRows.set(this.workRows);
    this.sig = sig;
    this.data = data;
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.workRows = workRows;
  }

  /** The next row, checked and packed as prepareBatch() does. */
  add(row: AuditRow): void {
    this.grow();
    const i = this.n;
    let p: RowProblem[] | undefined;
    if (this.atStart) {
      if (row.prevHash !== GENESIS_HASH) (p ??= []).push({ kind: 'chainBreak', detail: 'the first row must have prev_hash of 64 zeros' });
    } else if (this.prevKnown && row.prevHash !== this.prevHash) {
      (p ??= []).push(linkProblem(row.prevHash, this.prevId, this.prevHash));
    }
    if (!ROW_HASH_RE.test(row.rowHash)) {
      (p ??= []).push({ kind: 'hashMismatch', detail: 'row_hash is not 64 lowercase hex digits' });
      this.sig[i] = SIG.none;
    } else {
      let expected: string | undefined;
      try {
        expected = expectedRowHash(row);
      } catch (e) {
        if (!(e instanceof CanonicalizationError)) throw e;
        (p ??= []).push({ kind: 'hashMismatch', detail: `the row has no RFC 8785 canonical form (${e.message})` });
      }
      if (expected !== undefined && expected !== row.rowHash) (p ??= []).push({ kind: 'hashMismatch', detail: 'row_hash does not match the row content' });
      const slot = this.keys.slot(row.keyFingerprint);
      if (slot === undefined) this.sig[i] = SIG.unknownKey;
      else if (!KeyRing.wellFormed(row.signature)) this.sig[i] = SIG.malformed;
      else {
        const at = this.count * WORK_STRIDE;
        this.buf.writeUInt16LE(slot, at);
        this.buf.write(row.rowHash, at + 2, 32, 'hex');
        this.buf.write(row.signature, at + 34, 64, 'base64');
        this.workRows[this.count++] = i;
      }
    }
    this.problems[i] = p;
    this.after(row.id, row.rowHash);
  }

  /** A row added by its caller (no problems; sig[n] and any packed signature already set) or by add(). */
  after(id: number, rowHash: string): void {
    this.n++;
    this.atStart = false;
    this.prevKnown = true;
    this.prevId = id;
    this.prevHash = rowHash;
  }

  work(): SignatureWork {
    return { count: this.count, data: this.data.subarray(0, this.count * WORK_STRIDE), rows: this.workRows.subarray(0, this.count) };
  }
}

/** The verdict of a prepared batch, given the outcome of its signatures (from verifyWork(), in order). */
export function finishBatch(b: PreparedBatch, outcomes: Uint8Array): BatchVerdict {
  const rows = b.rows;
  const last = rows[rows.length - 1];
  return finishRows(rows.length, b.anchor, b.problems, b.sig, b.work, outcomes, (i) => rows[i].id, (i) => rows[i], last ? { id: last.id, rowHash: last.rowHash } : b.anchor);
}

/**
 * finishBatch() over rows given by index: `idAt` for every row, `rowAt` only for the rows a
 * finding or a tally names (the raw-rows path decodes those alone). `last`: the batch's last row.
 */
export function finishRows(
  n: number,
  anchor: Anchor,
  problemsOf: readonly (RowProblem[] | undefined)[],
  sig: Uint8Array,
  work: SignatureWork,
  outcomes: Uint8Array,
  idAt: (i: number) => number,
  rowAt: (i: number) => AuditRow,
  last: Anchor,
): BatchVerdict {
  if (outcomes.length !== work.count) throw new Error(`expected ${work.count} signature outcomes, got ${outcomes.length}`);
  for (let i = 0; i < work.count; i++) sig[work.rows[i]] = outcomes[i];
  const broken: BrokenRowVerdict[] = [];
  const unknown = new Map<string, UnknownKeyTally>();
  /** The row before: null at the start of the chain, undefined when not known, else its id. */
  let prevId: number | null | undefined = anchor === null ? null : anchor?.id;
  for (let i = 0; i < n; i++) {
    let problems = problemsOf[i];
    const outcome = sig[i];
    if (problems === undefined && outcome === SIG.valid) {
      prevId = idAt(i);
      continue;
    }
    const row = rowAt(i);
    if (outcome === SIG.unknownKey) {
      // Tallied (and kept in the checkpoint) by shape or stand-in, never by the column's text.
      const fp = untrusted.shaped(row.keyFingerprint, FINGERPRINT_RE);
      const u = unknown.get(fp);
      if (u) {
        u.rows++;
        u.lastId = row.id;
      } else unknown.set(fp, { fingerprint: fp, rows: 1, firstId: row.id, lastId: row.id });
    } else if (outcome === SIG.malformed) (problems ??= []).push({ kind: 'badSignature', detail: 'signature is not 64 bytes of base64' });
    else if (outcome === SIG.invalid) (problems ??= []).push({ kind: 'badSignature', detail: `signature does not verify under ${untrusted.matching(row.keyFingerprint, FINGERPRINT_RE)}` });
    if (problems && problems.length > 0) {
      broken.push({
        id: row.id,
        prevId,
        createdAt: row.createdAt.toISOString(),
        action: row.action,
        keyFingerprint: untrusted.shaped(row.keyFingerprint, FINGERPRINT_RE),
        problems,
      });
    }
    prevId = row.id;
  }
  return { rows: n, broken, unknownKeys: [...unknown.values()], last: n > 0 ? last : anchor };
}

/** Verifies one batch on this thread: links, hashes and signatures. */
export function verifyBatch(rows: readonly AuditRow[], anchor: Anchor, keys: KeyRing): BatchVerdict {
  const b = prepareBatch(rows, anchor, keys);
  return finishBatch(b, verifyWork(b.work, (slot, message, signature) => keys.verifySlot(slot, message, signature)));
}
