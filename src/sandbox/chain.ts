/**
 * Writes the audit log of the sandbox deployment: hash-chained, signed rows and the signed
 * transparency roots, as docs/aegis-formats.md defines them.
 *
 * - `row_hash` = hex SHA-256 of UTF-8 `prev_hash + canonical`, canonical being the JSON of
 *   {action, created_at (RFC 3339 UTC, ms), id (number), payload} with keys sorted at every
 *   level and no whitespace; 64 zeros before the first row.
 * - `signature` = base64 ed25519 over the 32 raw bytes of `row_hash`.
 * - a root every `rootEvery` rows: `root_hash` = `row_hash` of row `up_to_id`, signed by the root key.
 *
 * Rows go in with one `COPY ... FROM STDIN` per batch, so 1 000 000 rows cost a few hundred
 * round trips and no statement parsing. A large write signs its batches in worker threads
 * (ed25519 signing is a third of a row's cost) while the main thread hashes the next batch and
 * Postgres stores the one before; a small one signs inline. Violations that break the chain
 * are applied here, while the row is built, so everything around a broken row stays exactly as
 * a real writer leaves it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import Piscina from 'piscina';
import type { Ed25519KeyPair } from './keys';
import { qualified, type SandboxTables } from './schema';

/** A batch for a signing worker (src/sandbox/sign-worker.ts). */
export interface SignTask {
  /** Hex seeds of the keys the batch uses. */
  seeds: string[];
  /** Per row: the index of its key in `seeds`. */
  keys: number[];
  /** Per row: the hex hash to sign. */
  hashes: string[];
}

/** A write of at least this many rows signs in worker threads. */
const PARALLEL_FROM_ROWS = 20_000;

/** The compiled signing worker: beside this file in dist/; under ts-jest (sources), the build's copy; undefined without a build. */
function signWorkerFile(): string | undefined {
  for (const f of [resolve(__dirname, 'sign-worker.js'), resolve(__dirname, '../../dist/src/sandbox/sign-worker.js')]) if (existsSync(f)) return f;
  return undefined;
}

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
function copyText(v: string): string {
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonical JSON has no NaN or Infinity');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const k of keys) {
    if (obj[k] === undefined) continue;
    if (out.length > 1) out += ',';
    out += JSON.stringify(k) + ':' + canonicalJson(obj[k]);
  }
  return out + '}';
}

export function canonicalRow(r: { id: number; createdAt: Date; action: string; payload: unknown }): string {
  return canonicalJson({ action: r.action, created_at: r.createdAt.toISOString(), id: r.id, payload: r.payload });
}

export function computeRowHash(prevHash: string, canonical: string): string {
  return createHash('sha256').update(prevHash + canonical, 'utf8').digest('hex');
}

/** base64 ed25519 signature over the 32 raw bytes of a hex hash. */
export function signHash(key: Ed25519KeyPair, hexHash: string): string {
  return key.sign(Buffer.from(hexHash, 'hex')).toString('base64');
}

/** How a violation breaks one row (see violations.ts). */
export type RowTamper =
  /** Signed, but over other bytes: the signature does not verify under the named key. */
  | { kind: 'badSignature' }
  /** Hashed and signed with one payload, stored with another (edited after the fact). */
  | { kind: 'hashMismatch'; storedPayload: JsonValue }
  /** Internally consistent, but its prev_hash is not the previous row's hash (a row went missing). */
  | { kind: 'chainBreak'; prevHash: string };

export interface RowSpec {
  createdAt: Date;
  action: string;
  payload: JsonValue;
  key: Ed25519KeyPair;
  tamper?: RowTamper;
}

export interface ChainRow {
  id: number;
  createdAt: Date;
  action: string;
  payload: JsonValue;
  prevHash: string;
  rowHash: string;
  signature: string;
  keyFingerprint: string;
}

export interface RootRecord {
  id: number;
  createdAt: Date;
  upToId: number;
  rootHash: string;
  signature: string;
  keyFingerprint: string;
}

/** Where the chain stands; enough to continue it later. */
export interface ChainState {
  lastId: number;
  lastHash: string;
  lastCreatedAt: Date | null;
  lastRootId: number;
}

export interface ChainWriterOptions {
  schema: string;
  tables: SandboxTables;
  rootKey: Ed25519KeyPair;
  /** A transparency root after every row whose id is a multiple of this. */
  rootEvery: number;
  /** Roots whose root_hash is deliberately not their row's hash (root id → true). */
  tamperedRoots?: ReadonlySet<number>;
  batchSize?: number;
}

export class ChainWriter {
  readonly #opts: ChainWriterOptions;
  readonly #t: ReturnType<typeof qualified>;
  #state: ChainState = { lastId: 0, lastHash: GENESIS_HASH, lastCreatedAt: null, lastRootId: 0 };

  constructor(opts: ChainWriterOptions) {
    if (!Number.isInteger(opts.rootEvery) || opts.rootEvery < 1) throw new Error('rootEvery must be a positive integer');
    this.#opts = opts;
    this.#t = qualified(opts.schema, opts.tables);
  }

  get state(): Readonly<ChainState> {
    return { ...this.#state };
  }

  /** Builds the next row from a spec and advances the chain (no I/O). */
  buildRow(spec: RowSpec): ChainRow {
    const { row, toSign } = this.#hashRow(spec);
    row.signature = signHash(spec.key, toSign);
    return row;
  }

  /** The next row without its signature, and the hash to sign for it; advances the chain. */
  #hashRow(spec: RowSpec): { row: ChainRow; toSign: string } {
    const id = this.#state.lastId + 1;
    const tamper = spec.tamper;
    const prevHash = tamper?.kind === 'chainBreak' ? tamper.prevHash : this.#state.lastHash;
    const rowHash = computeRowHash(prevHash, canonicalRow({ id, createdAt: spec.createdAt, action: spec.action, payload: spec.payload }));
    const toSign = tamper?.kind === 'badSignature' ? createHash('sha256').update(rowHash, 'utf8').digest('hex') : rowHash;
    const row: ChainRow = {
      id,
      createdAt: spec.createdAt,
      action: spec.action,
      payload: tamper?.kind === 'hashMismatch' ? tamper.storedPayload : spec.payload,
      prevHash,
      rowHash,
      signature: '',
      keyFingerprint: spec.key.fingerprint,
    };
    this.#state = { ...this.#state, lastId: id, lastHash: rowHash, lastCreatedAt: spec.createdAt };
    return { row, toSign };
  }

  #rootFor(row: ChainRow): RootRecord | undefined {
    if (row.id % this.#opts.rootEvery !== 0) return undefined;
    const id = this.#state.lastRootId + 1;
    this.#state = { ...this.#state, lastRootId: id };
    const key = this.#opts.rootKey;
    // A tampered root checkpoints the previous row's hash: off by one, still properly signed.
    const rootHash = this.#opts.tamperedRoots?.has(id) ? row.prevHash : row.rowHash;
    return {
      id,
      createdAt: new Date(row.createdAt.getTime() + 1000),
      upToId: row.id,
      rootHash,
      signature: signHash(key, rootHash),
      keyFingerprint: key.fingerprint,
    };
  }

  /** Writes rows (and the roots that fall due) in batches; returns how many rows were written. */
  async write(client: ClientBase, specs: Iterable<RowSpec>): Promise<number> {
    const batchSize = this.#opts.batchSize ?? 5000;
    let pool: Piscina | undefined;
    let n = 0;
    let batch: { row: ChainRow; toSign: string; key: Ed25519KeyPair }[] = [];
    let roots: RootRecord[] = [];
    // Each batch: signed (inline or by a worker), then stored after the batch before it; a few in flight at once.
    let last: Promise<void> = Promise.resolve();
    const inFlight: Promise<void>[] = [];
    const flush = async (): Promise<void> => {
      const mine = batch;
      const myRoots = roots;
      batch = [];
      roots = [];
      if (!pool && n >= PARALLEL_FROM_ROWS) pool = this.#startPool();
      const signed = pool ? signBatch(pool, mine) : Promise.resolve(mine.map((b) => signHash(b.key, b.toSign)));
      const before = last;
      last = (async () => {
        const sigs = await signed;
        mine.forEach((b, i) => (b.row.signature = sigs[i]));
        await before;
        await this.#insert(
          client,
          mine.map((b) => b.row),
          myRoots,
        );
      })();
      // Its error surfaces through the next batch (which awaits this one) or the final await.
      last.catch(() => undefined);
      inFlight.push(last);
      if (inFlight.length > (pool ? pool.options.maxThreads + 1 : 1)) await inFlight.shift();
    };
    try {
      for (const spec of specs) {
        const { row, toSign } = this.#hashRow(spec);
        batch.push({ row, toSign, key: spec.key });
        const root = this.#rootFor(row);
        if (root) roots.push(root);
        n++;
        if (batch.length >= batchSize) await flush();
      }
      if (batch.length > 0 || roots.length > 0) await flush();
      await last;
    } finally {
      await last.catch(() => undefined);
      await pool?.destroy();
    }
    return n;
  }

  #startPool(): Piscina | undefined {
    const filename = signWorkerFile();
    if (!filename) return undefined;
    // The main thread hashes and Postgres stores: the workers take the other cores.
    const threads = Math.max(1, availableParallelism() - 1);
    return new Piscina({ filename, minThreads: threads, maxThreads: threads, idleTimeout: 1_000 });
  }

  async #insert(client: ClientBase, rows: ChainRow[], roots: RootRecord[]): Promise<void> {
    if (rows.length > 0) {
      let text = '';
      for (const r of rows) {
        text += `${r.id}\t${r.createdAt.toISOString()}\t${copyText(r.action)}\t${copyText(JSON.stringify(r.payload))}\t${copyText(r.prevHash)}\t${r.rowHash}\t${r.signature}\t${copyText(r.keyFingerprint)}\n`;
      }
      await pipeline(
        Readable.from([text]),
        client.query(copyFrom(`COPY ${this.#t.audit_log} (id, created_at, action, payload, prev_hash, row_hash, signature, key_fingerprint) FROM STDIN`)),
      );
    }
    if (roots.length > 0) {
      await client.query(
        `INSERT INTO ${this.#t.roots} (id, created_at, up_to_id, root_hash, signature, key_fingerprint)
         SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[], $6::text[])`,
        [
          roots.map((r) => r.id),
          roots.map((r) => r.createdAt.toISOString()),
          roots.map((r) => r.upToId),
          roots.map((r) => r.rootHash),
          roots.map((r) => r.signature),
          roots.map((r) => r.keyFingerprint),
        ],
      );
    }
  }
}

/** Signs a batch in a worker: its keys travel as seeds, once per batch. */
async function signBatch(pool: Piscina, batch: readonly { toSign: string; key: Ed25519KeyPair }[]): Promise<string[]> {
  const seeds: string[] = [];
  const index = new Map<Ed25519KeyPair, number>();
  const keys = batch.map((b) => {
    let i = index.get(b.key);
    if (i === undefined) {
      i = seeds.push(b.key.seed.toString('hex')) - 1;
      index.set(b.key, i);
    }
    return i;
  });
  const task: SignTask = { seeds, keys, hashes: batch.map((b) => b.toSign) };
  return (await pool.run(task)) as string[];
}
