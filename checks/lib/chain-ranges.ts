/**
 * A receipt-chain pass cut into id ranges that any replica can verify (DESIGN.md "Beyond one
 * machine"). Rows carry their own prev_hash, so a range verifies on its own — links, hashes
 * and signatures of its rows, the link of its first row aside — and only the boundaries are
 * joined: the first row of range k+1 must link to the last row of range k (or, past empty
 * ranges, to the last row before it).
 *
 * Three steps, each pure of I/O apart from the rows handed in:
 * - planRanges(): the ranges of a pass, from the ids it covers and (when known) its rows;
 * - verifyRange(): one range's result — its first and last rows (as the boundaries need
 *   them), its broken rows (capped, with their count) and unknown-key tallies;
 * - joinRanges(): the results of a contiguous prefix of ranges joined into what one pass
 *   over those rows would have found, broken links across boundaries included.
 * A checkpoint advances only over the contiguous prefix of completed ranges
 * (completedPrefix()): rows past a gap are not verified until the gap is.
 */
import type { AuditRow, RawAuditRows } from '../../src/core/sources';
import { linkProblem, type Anchor, type BatchVerdict, type BrokenRowVerdict, type UnknownKeyTally } from './chain-verify';
import { verifyStream, type ChainVerifier } from './chain-pipeline';
import { FINGERPRINT_RE } from './keys';
import { untrusted } from '../../src/core/untrusted';

/** Rows with afterId < id ≤ upToId. */
export interface ChainRange {
  index: number;
  afterId: number;
  upToId: number;
}

export interface PlanInput {
  /** The pass covers rows after this id (0: from the start of the chain)… */
  afterId: number;
  /** …up to this one (the highest id when the pass was planned). */
  lastId: number;
  /** Rows in (afterId, lastId] when counted; ids may have gaps, so ranges are sized by rows when known. */
  rows?: number | null;
}

export interface PlanOptions {
  /** Rows per range aimed at. */
  rowsPerRange: number;
  /** At most this many ranges (larger ranges beyond it). */
  maxRanges?: number;
}

/** Cuts (afterId, lastId] into ranges of about `rowsPerRange` rows each, of equal id span. */
export function planRanges(input: PlanInput, opts: PlanOptions): ChainRange[] {
  const { afterId, lastId } = input;
  if (!Number.isSafeInteger(afterId) || !Number.isSafeInteger(lastId) || afterId < 0) throw new Error(`bad range bounds (${afterId}, ${lastId}]`);
  if (!(opts.rowsPerRange >= 1)) throw new Error('rowsPerRange must be at least 1');
  if (lastId <= afterId) return [];
  const span = lastId - afterId;
  const rows = input.rows === undefined || input.rows === null ? span : Math.max(0, Math.min(input.rows, span));
  let count = Math.max(1, Math.ceil(rows / opts.rowsPerRange));
  if (opts.maxRanges !== undefined) count = Math.min(count, Math.max(1, opts.maxRanges));
  count = Math.min(count, span);
  const ranges: ChainRange[] = [];
  for (let i = 0; i < count; i++) {
    const from = afterId + Math.floor((span * i) / count);
    const to = i === count - 1 ? lastId : afterId + Math.floor((span * (i + 1)) / count);
    ranges.push({ index: i, afterId: from, upToId: to });
  }
  return ranges;
}

/** A range's first row as the boundary before it needs it (text from the row is kept raw here and gated where it is reported). */
export interface RangeFirstRow {
  id: number;
  prevHash: string;
  rowHash: string;
  createdAt: string;
  action: string;
  keyFingerprint: string;
}

/** One verified range: plain JSON, stored by whichever replica verified it. */
export interface RangeResult extends ChainRange {
  rows: number;
  first: RangeFirstRow | null;
  last: { id: number; rowHash: string } | null;
  /** Broken rows of the range, the first `cap` by id (links inside the range; the first row's link is the join's). */
  broken: BrokenRowVerdict[];
  /** Every broken row of the range, kept or not. */
  brokenTotal: number;
  unknownKeys: UnknownKeyTally[];
}

export interface VerifyRangeOptions {
  /** Broken rows kept in the result (the rest counted). */
  cap: number;
  /** The range starts the chain: its first row must link to 64 zeros. */
  startsChain: boolean;
}

/**
 * Verifies the rows of one range (`source` yields them in id order, all within the range;
 * `first` is its first row, read apart: verdicts carry no rows, and the boundary needs it).
 * The first row's link is checked only when the range starts the chain; otherwise it is the
 * boundary's, checked by joinRanges().
 */
export async function verifyRange(
  range: ChainRange,
  first: AuditRow | undefined,
  source: AsyncIterable<AuditRow[] | RawAuditRows>,
  verifier: ChainVerifier,
  opts: VerifyRangeOptions,
): Promise<RangeResult> {
  const result: RangeResult = { ...range, rows: 0, first: null, last: null, broken: [], brokenTotal: 0, unknownKeys: [] };
  if (first) {
    if (first.id <= range.afterId || first.id > range.upToId) throw new Error(`row ${first.id} is outside range (${range.afterId}, ${range.upToId}]`);
    result.first = {
      id: first.id,
      prevHash: first.prevHash,
      rowHash: first.rowHash,
      createdAt: first.createdAt.toISOString(),
      action: first.action,
      keyFingerprint: untrusted.shaped(first.keyFingerprint, FINGERPRINT_RE),
    };
  }
  const unknown = new Map<string, UnknownKeyTally>();
  const anchor: Anchor = opts.startsChain ? null : undefined;
  await verifyStream(source, anchor, verifier, (v: BatchVerdict) => {
    if (v.rows === 0) return true;
    const last = v.last as { id: number; rowHash: string };
    if (last.id > range.upToId || last.id <= range.afterId) throw new Error(`row ${last.id} is outside range (${range.afterId}, ${range.upToId}]`);
    if (!result.first) throw new Error(`range (${range.afterId}, ${range.upToId}] has rows but its first row was not given`);
    result.last = { id: last.id, rowHash: last.rowHash };
    result.rows += v.rows;
    for (const b of v.broken) {
      result.brokenTotal++;
      if (result.broken.length < opts.cap) result.broken.push(b);
    }
    mergeTallies(unknown, v.unknownKeys);
    return true;
  });
  result.unknownKeys = [...unknown.values()];
  return result;
}

function mergeTallies(into: Map<string, UnknownKeyTally>, tallies: readonly UnknownKeyTally[]): void {
  for (const u of tallies) {
    const t = into.get(u.fingerprint);
    if (!t) into.set(u.fingerprint, { ...u });
    else {
      t.rows += u.rows;
      t.firstId = Math.min(t.firstId, u.firstId);
      t.lastId = Math.max(t.lastId, u.lastId);
    }
  }
}

/** How many ranges, from the first, are done (a checkpoint advances only over these). */
export function completedPrefix(count: number, done: ReadonlySet<number>): number {
  let n = 0;
  while (n < count && done.has(n)) n++;
  return n;
}

/** The row a joined prefix ends at (what the next range's first row must link to). */
export type JoinAnchor = { id: number; rowHash: string } | null;

export interface JoinedRanges {
  /** Rows verified in the joined ranges. */
  rows: number;
  /** Broken rows, range by range in id order, boundary breaks merged in (each range's kept rows; see brokenTotal). */
  broken: BrokenRowVerdict[];
  /** Every broken row, boundary breaks included. */
  brokenTotal: number;
  unknownKeys: UnknownKeyTally[];
  /** The last row of the joined ranges (the anchor given when they hold no row). */
  last: JoinAnchor | undefined;
}

/**
 * Joins the results of consecutive ranges (in index order, no gap), continuing from `anchor`
 * — the last row verified before the first of them (null: they start the chain; undefined:
 * not known, so the first boundary is not checked). The first row of each range must link
 * to the last row before it: when it does not, that row gets the chain break one pass would
 * have found (before its other problems, as one pass lists them), and a broken first row
 * gets its predecessor.
 */
export function joinRanges(results: readonly RangeResult[], anchor: JoinAnchor | undefined): JoinedRanges {
  for (let i = 1; i < results.length; i++) {
    if (results[i].index !== results[i - 1].index + 1 || results[i].afterId !== results[i - 1].upToId) throw new Error(`ranges ${results[i - 1].index} and ${results[i].index} are not consecutive`);
  }
  const out: JoinedRanges = { rows: 0, broken: [], brokenTotal: 0, unknownKeys: [], last: anchor };
  const unknown = new Map<string, UnknownKeyTally>();
  let prev = anchor;
  for (const r of results) {
    const broken = r.broken.map((b) => ({ ...b, problems: [...b.problems] }));
    let total = r.brokenTotal;
    const first = r.first;
    if (first && prev !== undefined && prev !== null) {
      const at = broken.findIndex((b) => b.id === first.id);
      const existing = at >= 0 ? broken[at] : undefined;
      if (existing) existing.prevId = prev.id;
      // A range that starts the chain checked its first link itself (against 64 zeros).
      if (first.prevHash !== prev.rowHash) {
        const problem = linkProblem(first.prevHash, prev.id, prev.rowHash);
        if (existing) existing.problems.unshift(problem);
        else {
          broken.unshift({ id: first.id, prevId: prev.id, createdAt: first.createdAt, action: first.action, keyFingerprint: first.keyFingerprint, problems: [problem] });
          total++;
        }
      }
    }
    out.broken.push(...broken);
    out.brokenTotal += total;
    out.rows += r.rows;
    mergeTallies(unknown, r.unknownKeys);
    if (r.last) prev = r.last;
  }
  out.last = prev;
  out.unknownKeys = [...unknown.values()];
  return out;
}

/** Whether a range starting after `afterId` starts the chain (the pass begins at the first row). */
export function rangeStartsChain(range: ChainRange, passAfterId: number): boolean {
  return range.index === 0 && passAfterId === 0;
}
