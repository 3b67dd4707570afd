/**
 * The audit chain's hashing rules (docs/aegis-formats.md, "Audit rows and their hash chain"): a row's hash is
 * SHA-256 over `prev_hash + canonical`, where canonical is the row's JSON serialised by
 * RFC 8785, the JSON Canonicalization Scheme (JCS). The audit service computes the same
 * bytes, so any difference here is a false alarm on every row: keep this module small and
 * exact.
 */
import * as crypto from 'node:crypto';
import { isValidDate } from '../../src/core/time';

/** `prev_hash` of the first row of the chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** A row hash as the chain stores it: 64 lowercase hex digits. */
export const ROW_HASH_RE = /^[0-9a-f]{64}$/;

/** A value RFC 8785 cannot serialise (NaN, Infinity, a lone surrogate): there is no canonical form. */
export class CanonicalizationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalizationError';
  }
}

/** A UTF-16 surrogate that is not part of a pair: not Unicode text, so not I-JSON (RFC 8785 §3.1). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Any surrogate: most strings have none, and this test is cheaper than the one above. */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

function str(s: string): string {
  if (ANY_SURROGATE.test(s) && LONE_SURROGATE.test(s)) throw new CanonicalizationError('a string holds a lone UTF-16 surrogate');
  // ECMAScript's JSON string serialisation is exactly RFC 8785 §3.2.2.2: `\b \t \n \f \r \" \\`
  // as two-character escapes, other controls as \u00xx in lowercase hex, everything else
  // (including / and non-ASCII) as itself.
  return JSON.stringify(s);
}

function num(n: number): string {
  if (!Number.isFinite(n)) throw new CanonicalizationError(`${n} is not a JSON number`);
  // ECMAScript Number-to-String (RFC 8785 §3.2.2.3); JSON.stringify also writes -0 as 0.
  return JSON.stringify(n);
}

/**
 * RFC 8785 canonical JSON: object members sorted by the UTF-16 code units of their names (at
 * every level), no whitespace, ECMAScript number formatting, minimal string escaping. The
 * UTF-8 bytes of the result are what gets hashed. Dates become their ISO string (as
 * JSON.stringify makes them); object members whose value JSON cannot hold (undefined,
 * functions, symbols) are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'number':
      return num(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new CanonicalizationError('a BigInt is not a JSON number');
    case 'undefined':
    case 'function':
    case 'symbol':
      return 'null';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
  if (isValidDate(value)) return str(value.toISOString());
  const obj = value as Record<string, unknown>;
  // Array.prototype.sort without a comparator orders strings by UTF-16 code units: exactly
  // RFC 8785 §3.2.3 (not code points: U+1F600 sorts before U+FB33).
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (out.length > 1) out += ',';
    out += str(k) + ':' + canonicalJson(v);
  }
  return out + '}';
}

export interface CanonicalRowInput {
  id: number;
  createdAt: Date;
  action: string;
  payload: unknown;
}

/**
 * The canonical JSON of an audit row: `{"action","created_at","id","payload"}` — exactly
 * canonicalJson() of that object, written out directly (the names are already in order), as
 * this runs once for every row of a million-row pass.
 */
export function canonicalRow(row: CanonicalRowInput): string {
  const createdAt = row.createdAt.toISOString();
  const { action, id, payload } = row as { action: unknown; id: unknown; payload: unknown };
  if (typeof action !== 'string' || typeof id !== 'number') return canonicalJson({ action, created_at: createdAt, id, payload });
  const head = '{"action":' + str(action) + ',"created_at":' + str(createdAt) + ',"id":' + num(id);
  // canonicalJson leaves out a member whose value JSON cannot hold.
  if (payload === undefined || typeof payload === 'function' || typeof payload === 'symbol') return head + '}';
  return head + ',"payload":' + canonicalJson(payload) + '}';
}

/** One-shot hashing (Node ≥ 20.12): a third of createHash()'s cost on a row-sized input. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** Lowercase hex SHA-256 of the UTF-8 bytes of `prevHash + canonical`. */
export function chainHash(prevHash: string, canonical: string): string {
  if (oneShot) return oneShot('sha256', prevHash + canonical, 'hex');
  return crypto.createHash('sha256').update(prevHash + canonical, 'utf8').digest('hex');
}

/** The hash a row should carry, given the `prev_hash` it stores. Throws CanonicalizationError when the row has no canonical form. */
export function expectedRowHash(row: CanonicalRowInput & { prevHash: string }): string {
  return chainHash(row.prevHash, canonicalRow(row));
}
