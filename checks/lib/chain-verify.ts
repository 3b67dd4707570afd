/**
 * Verifying one batch of audit rows: links, hashes and signatures. Pure and synchronous —
 * inputs are the rows, the row the batch continues from and the key ring — so batches are
 * independent of each other: rows carry their own prev_hash, and a batch needs only the
 * last row of the batch before it (as read, not as verified) to check its first link. A
 * verify stage can therefore run batches in parallel and join the verdicts in id order.
 */
import type { AuditRow } from '../../src/core/sources';
import { CanonicalizationError, GENESIS_HASH, ROW_HASH_RE, expectedRowHash } from './canonical';
import type { KeyRing } from './ed25519';
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

/** The start of a hash read from a row (hostile text): shown only when it has a hash's shape. */
const short = (h: string) => (ROW_HASH_RE.test(h) ? `${h.slice(0, 16)}…` : untrusted.matching(h, ROW_HASH_RE));

export function verifyBatch(rows: readonly AuditRow[], anchor: Anchor, keys: KeyRing): BatchVerdict {
  const broken: BrokenRowVerdict[] = [];
  const unknown = new Map<string, UnknownKeyTally>();
  let prev = anchor;
  for (const row of rows) {
    const problems: RowProblem[] = [];
    if (prev === null) {
      if (row.prevHash !== GENESIS_HASH) problems.push({ kind: 'chainBreak', detail: 'the first row must have prev_hash of 64 zeros' });
    } else if (prev !== undefined && row.prevHash !== prev.rowHash) {
      problems.push({ kind: 'chainBreak', detail: `prev_hash ${short(row.prevHash)} ≠ row ${prev.id}'s row_hash ${short(prev.rowHash)}` });
    }
    const hashOk = ROW_HASH_RE.test(row.rowHash);
    if (!hashOk) problems.push({ kind: 'hashMismatch', detail: 'row_hash is not 64 lowercase hex digits' });
    else {
      let expected: string | undefined;
      try {
        expected = expectedRowHash(row);
      } catch (e) {
        if (!(e instanceof CanonicalizationError)) throw e;
        problems.push({ kind: 'hashMismatch', detail: `the row has no RFC 8785 canonical form (${e.message})` });
      }
      if (expected !== undefined && expected !== row.rowHash) problems.push({ kind: 'hashMismatch', detail: 'row_hash does not match the row content' });
      const outcome = keys.verify(row.keyFingerprint, Buffer.from(row.rowHash, 'hex'), row.signature);
      if (outcome === 'unknown-key') {
        // Tallied (and kept in the checkpoint) by shape or stand-in, never by the column's text.
        const fp = untrusted.shaped(row.keyFingerprint, FINGERPRINT_RE);
        const u = unknown.get(fp);
        if (u) {
          u.rows++;
          u.lastId = row.id;
        } else unknown.set(fp, { fingerprint: fp, rows: 1, firstId: row.id, lastId: row.id });
      } else if (outcome === 'malformed') problems.push({ kind: 'badSignature', detail: 'signature is not 64 bytes of base64' });
      else if (outcome === 'invalid') problems.push({ kind: 'badSignature', detail: `signature does not verify under ${untrusted.matching(row.keyFingerprint, FINGERPRINT_RE)}` });
    }
    if (problems.length > 0) {
      broken.push({
        id: row.id,
        prevId: prev === null ? null : prev?.id,
        createdAt: row.createdAt.toISOString(),
        action: row.action,
        keyFingerprint: untrusted.shaped(row.keyFingerprint, FINGERPRINT_RE),
        problems,
      });
    }
    prev = { id: row.id, rowHash: row.rowHash };
  }
  return { rows: rows.length, broken, unknownKeys: [...unknown.values()], last: prev };
}
