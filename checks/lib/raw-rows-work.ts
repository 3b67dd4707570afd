/**
 * A raw batch of audit rows (the server's bytes, RawAuditRows) verified where it lands — on a
 * worker thread of the pool, or on the check's thread for a short run: decoded into the rows
 * the parsed reader gives, then prepareBatch(), the signatures and finishBatch() exactly as
 * for parsed rows. Bad data in a row comes back as the message the parsed reader throws.
 */
import { decodeAuditRows } from '../../src/core/raw-audit-rows';
import { ErrorCodes, isAuditError } from '../../src/core/errors';
import type { AuditRow, RawAuditRows } from '../../src/core/sources';
import { finishBatch, prepareBatch, verifyWork, type Anchor, type ChunkVerdict } from './chain-verify';
import type { KeyRing } from './ed25519';

export interface RawRowsTask extends Pick<RawAuditRows, 'data' | 'payload' | 'table'> {
  anchor: Anchor;
  /** Ids whose row_hash the verdict carries. */
  want: number[];
}

export type RawRowsResult = ChunkVerdict | { badData: string };

export function verifyRawRows(
  task: RawRowsTask,
  keys: Pick<KeyRing, 'slot'>,
  verify: (slot: number, message: Uint8Array, signature: Uint8Array) => boolean,
): RawRowsResult {
  let rows: AuditRow[];
  try {
    rows = decodeAuditRows(task);
  } catch (e) {
    if (isAuditError(e) && e.code === ErrorCodes.BAD_DATA) return { badData: e.message };
    throw e;
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
