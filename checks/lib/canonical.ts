/**
 * The audit chain's hashing rules (DESIGN.md, "The audited deployment"): a row's hash is
 * SHA-256 over `prev_hash + canonical`, where canonical is the row's JSON with keys sorted
 * at every level and no whitespace. The audit service computes the same bytes, so any
 * difference here is a false alarm on every row: keep this module small and exact.
 */
import { createHash } from 'node:crypto';
import { isValidDate } from '../../src/core/time';

/** `prev_hash` of the first row of the chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** A row hash as the chain stores it: 64 lowercase hex digits. */
export const ROW_HASH_RE = /^[0-9a-f]{64}$/;

/**
 * JSON with object keys sorted at every level and no whitespace. Keys sort by UTF-16 code
 * unit (JS default), which equals code-point order for every key outside the astral planes.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // JSON.stringify yields undefined for undefined/functions/symbols; JSON has only null.
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
  if (isValidDate(value)) return JSON.stringify(value.toISOString());
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    // Object members that JSON cannot hold are dropped, as JSON.stringify does.
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    parts.push(JSON.stringify(k) + ':' + canonicalJson(v));
  }
  return '{' + parts.join(',') + '}';
}

export interface CanonicalRowInput {
  id: number;
  createdAt: Date;
  action: string;
  payload: unknown;
}

/** The canonical JSON of an audit row: `{"action","created_at","id","payload"}`. */
export function canonicalRow(row: CanonicalRowInput): string {
  return canonicalJson({
    action: row.action,
    created_at: row.createdAt.toISOString(),
    id: row.id,
    payload: row.payload,
  });
}

/** Lowercase hex SHA-256 of the UTF-8 bytes of `prevHash + canonical`. */
export function chainHash(prevHash: string, canonical: string): string {
  return createHash('sha256').update(prevHash + canonical, 'utf8').digest('hex');
}

/** The hash a row should carry, given the `prev_hash` it stores. */
export function expectedRowHash(row: CanonicalRowInput & { prevHash: string }): string {
  return chainHash(row.prevHash, canonicalRow(row));
}
