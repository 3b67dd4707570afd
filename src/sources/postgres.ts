/**
 * The audit database (pg). Table and schema names come from config; large tables are read
 * in batches and never loaded whole: the audit log by keyset batches (one statement each),
 * api_keys with a cursor.
 */
import { Pool, types, type PoolClient, type QueryConfig, type QueryResultRow } from 'pg';
import Cursor from 'pg-cursor';
import { copyToBuffer } from './copy-to-buffer';
import type { ApiKeyRow, AuditDb, AuditRow, ChainExtent, ChainLocation, FingerprintUsage, HistoricalKey, RawAuditRows, RootRow, StreamRowsOptions } from '../core/sources';
import { copyHeaderLength, decodeAuditRows, scanAuditTuples } from '../core/raw-audit-rows';
import type { PostgresConfig } from '../config/schema';
import { badData } from '../core/errors';
import { guard, stopIfAborted, wrapSourceError } from './errors';
import { sourceUnavailable } from '../core/errors';
import { isValidDate } from '../core/time';
import { untrusted } from '../core/untrusted';

const SOURCE = 'postgres';

function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

function toId(v: unknown, where: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw badData(SOURCE, where, `id is not an integer within 2^53`);
  return n;
}

function toDate(v: unknown, where: string): Date {
  if (isValidDate(v)) return v;
  throw badData(SOURCE, where, 'timestamp is missing or invalid');
}

function toText(v: unknown): string {
  return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

/**
 * The fixed shapes of the formats: a row or root hash is 64 lowercase hex digits, a key
 * fingerprint `sha256:` and 64 more. A column that holds anything else holds hostile text
 * (a secret pasted there, markup, megabytes): it enters as untrusted.shaped's stand-in, so
 * no check, finding, log line or checkpoint ever holds any of it, while equal values still
 * compare equal (chain links, tallies by fingerprint).
 */
const HASH_SHAPE = /^[0-9a-f]{64}$/;
const FINGERPRINT_SHAPE = /^sha256:[0-9a-f]{64}$/;
const hashText = (v: unknown) => untrusted.shaped(toText(v), HASH_SHAPE);
const fingerprintText = (v: unknown) => untrusted.shaped(toText(v), FINGERPRINT_SHAPE);

const TIMESTAMPTZ = 1184;
const pgTimestamptz = types.getTypeParser(TIMESTAMPTZ, 'text') as (s: string) => unknown;

const isDigits = (s: string, from: number, to: number) => {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
};

/**
 * pg's timestamptz parser with a fast path for the form the server sends in UTC,
 * `2026-11-22 10:00:00.123456+00`: the same Date.UTC arguments pg's parser (postgres-date)
 * computes, without its regular expressions — a first pass parses a million of these.
 * Anything else (another time zone, BC, years before 100 or after 9999, infinity) goes to
 * pg's parser, so every value parses exactly as pg parses it.
 */
export function parseTimestamptz(s: string): unknown {
  const n = s.length;
  if (
    n >= 22 &&
    n <= 29 &&
    s.charCodeAt(4) === 45 &&
    s.charCodeAt(7) === 45 &&
    s.charCodeAt(10) === 32 &&
    s.charCodeAt(13) === 58 &&
    s.charCodeAt(16) === 58 &&
    s.endsWith('+00') &&
    isDigits(s, 0, 4) &&
    isDigits(s, 5, 7) &&
    isDigits(s, 8, 10) &&
    isDigits(s, 11, 13) &&
    isDigits(s, 14, 16) &&
    isDigits(s, 17, 19) &&
    (n === 22 || (n > 23 && s.charCodeAt(19) === 46 && isDigits(s, 20, n - 3)))
  ) {
    const year = Number(s.slice(0, 4));
    if (year >= 100) {
      const ms = n === 22 ? 0 : 1000 * parseFloat(s.slice(19, n - 3));
      return new Date(Date.UTC(year, Number(s.slice(5, 7)) - 1, Number(s.slice(8, 10)), Number(s.slice(11, 13)), Number(s.slice(14, 16)), Number(s.slice(17, 19)), ms));
    }
  }
  return pgTimestamptz(s);
}

/** pg's type parsers, timestamptz through parseTimestamptz. */
const PARSERS = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ && format !== 'binary' ? parseTimestamptz : types.getTypeParser(oid, format ?? 'text')) as typeof types.getTypeParser,
};

/**
 * The rows a keyset reader asks for next, `last` being what it asked for before: the first
 * batches are small, each twice the last up to `batchSize`, so that the first rows reach
 * whoever verifies them as it starts rather than after a whole batch is read and checked (on a
 * 100 000-row first pass, its worker threads had their first signatures about 60 ms sooner).
 */
function batchRows(batchSize: number, left: number, last?: number): number {
  return Math.min(batchSize, left, last === undefined ? Math.max(1, Math.ceil(batchSize / 8)) : last * 2);
}

const AUDIT_COLUMNS = 'id, created_at, action, payload, prev_hash, row_hash, signature, key_fingerprint';

/** Column types (OIDs) for which the raw reader decodes exactly what pg's parsers give. */
const INT_TYPES = new Set([20, 21, 23]);
const TEXT_TYPES = new Set([25, 1043]);
const TIMESTAMPTZ_TYPE = 1184;
const JSONB_TYPE = 3802;
const JSON_TYPE = 114;
const ROOT_COLUMNS = 'id, created_at, up_to_id, root_hash, signature, key_fingerprint';

export class PostgresAuditDb implements AuditDb {
  readonly #pool: Pool;
  readonly #t: { audit: string; historical: string; roots: string; apiKeys: string };
  readonly #cfg: PostgresConfig;
  readonly #queryTimeout: number;

  constructor(cfg: PostgresConfig) {
    this.#cfg = cfg;
    this.#queryTimeout = cfg.statement_timeout + Math.min(cfg.statement_timeout, 5_000);
    this.#pool = new Pool({
      connectionString: cfg.url,
      max: 4,
      connectionTimeoutMillis: cfg.connect_timeout,
      statement_timeout: cfg.statement_timeout,
      idleTimeoutMillis: 1000,
      application_name: 'aegis-audit',
      types: PARSERS,
    });
    // An idle client that dies (server restart) must not crash the process.
    this.#pool.on('error', () => undefined);
    const s = ident(cfg.schema);
    this.#t = {
      audit: `${s}.${ident(cfg.tables.audit_log)}`,
      historical: `${s}.${ident(cfg.tables.historical_keys)}`,
      roots: `${s}.${ident(cfg.tables.roots)}`,
      apiKeys: `${s}.${ident(cfg.tables.api_keys)}`,
    };
  }

  /** Names the config key of a missing table instead of Postgres' bare "relation does not exist". */
  #explain(e: unknown, what: string): Error {
    const code = (e as { code?: string }).code;
    if (code === '42P01' || code === '3F000') {
      const t = this.#cfg.tables;
      return sourceUnavailable(
        SOURCE,
        'missing_table',
        `${what}: table not found in schema "${this.#cfg.schema}" (configured tables: audit_log=${t.audit_log}, historical_keys=${t.historical_keys}, roots=${t.roots}, api_keys=${t.api_keys})`,
      );
    }
    if (e instanceof Error && e.message === 'Query read timeout') {
      return sourceUnavailable(SOURCE, 'timeout', `${what}: timed out: no answer within ${this.#queryTimeout} ms`);
    }
    if (code === '42703') return sourceUnavailable(SOURCE, 'schema_mismatch', `${what}: a column the auditor reads is missing (docs/aegis-formats.md lists the columns it expects)`);
    return wrapSourceError(SOURCE, what, e);
  }

  async #query<R extends QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      // statement_timeout is enforced by the server, so it cannot end a query the server never
      // received (a hung server or a dead network); query_timeout is the client's own bound.
      // The api_keys cursor is left without it: it legitimately runs long, batch by batch.
      const query: QueryConfig & { query_timeout: number } = { text: sql, values: params, query_timeout: this.#queryTimeout };
      const r = await this.#pool.query<R>(query);
      return r.rows;
    } catch (e) {
      throw this.#explain(e, what);
    }
  }

  #auditRow(r: Record<string, unknown>): AuditRow {
    const id = toId(r.id, `${this.#cfg.tables.audit_log} row`);
    const where = `${this.#cfg.tables.audit_log} row id=${id}`;
    return {
      id,
      createdAt: toDate(r.created_at, where),
      action: toText(r.action),
      payload: r.payload ?? null,
      prevHash: hashText(r.prev_hash),
      rowHash: hashText(r.row_hash),
      signature: toText(r.signature),
      keyFingerprint: fingerprintText(r.key_fingerprint),
    };
  }

  #rootRow(r: Record<string, unknown>): RootRow {
    const id = toId(r.id, `${this.#cfg.tables.roots} row`);
    const where = `${this.#cfg.tables.roots} row id=${id}`;
    return {
      id,
      createdAt: toDate(r.created_at, where),
      upToId: toId(r.up_to_id, where),
      rootHash: hashText(r.root_hash),
      signature: toText(r.signature),
      keyFingerprint: fingerprintText(r.key_fingerprint),
    };
  }

  get historicalKeysTable(): string {
    return this.#cfg.tables.historical_keys;
  }

  async recentRows(limit: number): Promise<AuditRow[]> {
    const rows = await this.#query('reading recent audit rows', `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} ORDER BY id DESC LIMIT $1`, [limit]);
    return rows.map((r) => this.#auditRow(r));
  }

  async recentRoots(limit: number): Promise<RootRow[]> {
    const rows = await this.#query('reading recent transparency roots', `SELECT ${ROOT_COLUMNS} FROM ${this.#t.roots} ORDER BY id DESC LIMIT $1`, [limit]);
    return rows.map((r) => this.#rootRow(r));
  }

  async historicalKeys(): Promise<HistoricalKey[]> {
    const rows = await this.#query<{ fingerprint: unknown; public_key: unknown; promoted_at: unknown }>(
      'reading historical keys',
      `SELECT fingerprint, public_key, promoted_at FROM ${this.#t.historical} ORDER BY fingerprint`,
    );
    return rows.map((r) => ({
      fingerprint: fingerprintText(r.fingerprint),
      publicKey: toText(r.public_key),
      promotedAt: isValidDate(r.promoted_at) ? r.promoted_at : null,
    }));
  }

  async rowsByAction(actions: string[]): Promise<AuditRow[]> {
    const rows = await this.#query(
      'reading rotation rows',
      `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} WHERE action = ANY($1::text[]) ORDER BY id`,
      [actions],
    );
    return rows.map((r) => this.#auditRow(r));
  }

  async #usage(table: string, what: string): Promise<FingerprintUsage[]> {
    const rows = await this.#query<{ fp: unknown; n: unknown; first_id: unknown; last_id: unknown; last_at: unknown }>(
      what,
      `SELECT key_fingerprint AS fp, count(*) AS n, min(id) AS first_id, max(id) AS last_id, max(created_at) AS last_at
         FROM ${table} GROUP BY key_fingerprint ORDER BY max(id)`,
    );
    return rows.map((r) => ({
      fingerprint: fingerprintText(r.fp),
      rows: Number(r.n),
      firstId: toId(r.first_id, what),
      lastId: toId(r.last_id, what),
      lastAt: toDate(r.last_at, what),
    }));
  }

  fingerprintUsage(): Promise<FingerprintUsage[]> {
    return this.#usage(this.#t.audit, 'reading audit row fingerprints');
  }

  rootFingerprintUsage(): Promise<FingerprintUsage[]> {
    return this.#usage(this.#t.roots, 'reading root fingerprints');
  }

  /**
   * Keyset batches (`WHERE id > $last ORDER BY id LIMIT $n` on the primary key), each its own
   * statement under statement_timeout, and no transaction held across them (so vacuum's
   * horizon is never pinned by a pass that runs for minutes). The next batch is requested
   * as soon as this one arrives, so reading overlaps the caller's verification.
   */
  async *streamRows(afterId: number, opts: StreamRowsOptions = {}): AsyncIterable<AuditRow[]> {
    const batchSize = opts.batchSize ?? 5000;
    let left = opts.limit ?? Number.POSITIVE_INFINITY;
    const until = opts.untilId;
    const sql =
      until === undefined
        ? `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} WHERE id > $1 ORDER BY id LIMIT $2`
        : `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} WHERE id > $1 AND id <= $3 ORDER BY id LIMIT $2`;
    const fetch = (after: number, n: number): Promise<AuditRow[]> => {
      const p = this.#query(`reading audit rows after id ${after}`, sql, until === undefined ? [after, n] : [after, n, until]).then((rows) =>
        rows.map((r) => this.#auditRow(r)),
      );
      // A caller that stops early leaves the read-ahead unawaited: its failure is nobody's.
      p.catch(() => undefined);
      return p;
    };
    if (left <= 0) return;
    let asked = batchRows(batchSize, left);
    let next: Promise<AuditRow[]> | undefined = fetch(afterId, asked);
    while (next) {
      stopIfAborted(opts.signal, SOURCE, 'streaming audit rows');
      const batch: AuditRow[] = await next;
      if (batch.length === 0) return;
      left -= batch.length;
      next = undefined;
      if (batch.length === asked && left > 0) {
        asked = batchRows(batchSize, left, asked);
        next = fetch(batch[batch.length - 1].id, asked);
      }
      yield batch;
    }
  }

  /**
   * Whether the audit table has the documented column types (then the raw reader applies), and
   * how payload is encoded. Asked at the start of every stream (one short statement): a daemon
   * lives for months, and a column's type may change under it.
   */
  async #payloadEncoding(): Promise<'jsonb' | 'json' | undefined> {
    try {
      const r = await this.#pool.query({ text: `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} LIMIT 0`, query_timeout: this.#queryTimeout } as QueryConfig);
      const t = r.fields.map((f) => f.dataTypeID);
      const ok =
        t.length === 8 && INT_TYPES.has(t[0]) && t[1] === TIMESTAMPTZ_TYPE && TEXT_TYPES.has(t[2]) && (t[3] === JSONB_TYPE || t[3] === JSON_TYPE) && t.slice(4).every((x) => TEXT_TYPES.has(x));
      return ok ? (t[3] === JSONB_TYPE ? 'jsonb' : 'json') : undefined;
    } catch {
      // The parsed reader says what is wrong (a missing table or column, no connection), in its words.
      return undefined;
    }
  }

  /**
   * streamRows' batches (the same keyset statements, bounds, sizes and read-ahead), sent by
   * the server as `COPY … (FORMAT binary)` into a buffer per batch and left undecoded: the
   * reader only finds the last row of each, and whoever verifies the batch decodes it. A table
   * whose columns are not of the documented types is read by streamRows instead.
   */
  async *streamRawRows(afterId: number, opts: StreamRowsOptions = {}): AsyncIterable<AuditRow[] | RawAuditRows> {
    const payload = await this.#payloadEncoding();
    if (!payload) {
      yield* this.streamRows(afterId, opts);
      return;
    }
    const batchSize = opts.batchSize ?? 5000;
    let left = opts.limit ?? Number.POSITIVE_INFINITY;
    const until = opts.untilId;
    if (left <= 0) return;
    const table = this.#cfg.tables.audit_log;
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw this.#explain(e, `reading audit rows after id ${afterId}`);
    }
    let broken = false;
    let pending: Promise<RawAuditRows | AuditRow[]> | undefined;
    /** Fails the COPY in progress: a connection error outside a query reaches only the client's 'error' event. */
    let failCurrent: ((e: Error) => void) | undefined;
    let lost: Error | undefined;
    // A checked-out client has no listener of the pool's: without one, a server that ends the
    // connection (a restart, pg_terminate_backend) would be an unhandled 'error' that ends the process.
    const onError = (e: Error) => {
      broken = true;
      lost ??= e;
      failCurrent?.(e);
    };
    client.on('error', onError);
    let sizeHint = 64 * 1024;
    const fetch = (after: number, n: number): Promise<RawAuditRows | AuditRow[]> => {
      const what = `reading audit rows after id ${after}`;
      // COPY takes no parameters: the bounds are integers this reader produced.
      const sql = `COPY (SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} WHERE id > ${Math.trunc(after)}${until === undefined ? '' : ` AND id <= ${Math.trunc(until)}`} ORDER BY id LIMIT ${Math.trunc(n)}) TO STDOUT (FORMAT binary)`;
      const p = new Promise<Uint8Array>((resolve, reject) => {
        if (lost) return reject(lost);
        // Sized for a batch like the last one: the buffer seldom grows.
        const stream = client.query(copyToBuffer(sql, sizeHint));
        // statement_timeout bounds the statement on the server; this bounds waiting for it.
        const timer = setTimeout(() => {
          broken = true;
          reject(new Error('Query read timeout'));
          stream.destroy();
        }, this.#queryTimeout);
        failCurrent = (e) => {
          clearTimeout(timer);
          reject(e);
        };
        stream.on('end', () => {
          clearTimeout(timer);
          resolve(stream.bytes());
        });
        stream.on('error', (e: Error) => {
          clearTimeout(timer);
          broken = true;
          reject(e);
        });
        stream.resume();
      }).then(
        (all) => {
          // The query's own buffer (never Node's shared pool): it may be transferred to another thread.
          const total = all.length;
          sizeHint = Math.max(64 * 1024, Math.ceil(total * 1.05));
          const buf = Buffer.from(all.buffer, all.byteOffset, total);
          if (total === 0) return [] as AuditRow[];
          const from = copyHeaderLength(buf);
          // The trailer: a field count of -1.
          const data = all.subarray(from, total - 2);
          try {
            const s = scanAuditTuples(data, table);
            return { raw: true as const, data, rows: s.rows, lastId: s.lastId, lastRowHash: s.lastRowHash, payload, table };
          } catch (e) {
            // A malformed row: decoded here, so the error is the one the parsed reader gives (the first in id order).
            decodeAuditRows({ data, payload, table });
            throw e;
          }
        },
        (e: unknown) => {
          throw this.#explain(e, what);
        },
      );
      // A caller that stops early leaves the read-ahead unawaited: its failure is nobody's.
      p.catch(() => undefined);
      return p;
    };
    try {
      let asked = batchRows(batchSize, left);
      pending = fetch(afterId, asked);
      while (pending) {
        stopIfAborted(opts.signal, SOURCE, 'streaming audit rows');
        const batch = await pending;
        pending = undefined;
        const n = 'raw' in batch ? batch.rows : batch.length;
        if (n === 0) return;
        left -= n;
        if (n === asked && left > 0) {
          asked = batchRows(batchSize, left, asked);
          pending = fetch('raw' in batch ? batch.lastId : batch[batch.length - 1].id, asked);
        }
        yield batch;
      }
    } finally {
      client.off('error', onError);
      // A read-ahead still streaming would leave the connection mid-COPY: close it instead.
      client.release(broken || pending !== undefined);
    }
  }

  async chainLocation(): Promise<ChainLocation> {
    const [db] = await this.#query<{ database: unknown; oid: unknown }>(
      'reading the database identity',
      'SELECT current_database() AS database, oid FROM pg_database WHERE datname = current_database()',
    );
    const location: ChainLocation = {
      systemIdentifier: null,
      database: toText(db?.database),
      databaseOid: Number(db?.oid ?? 0),
      table: `${this.#cfg.schema}.${this.#cfg.tables.audit_log}`,
    };
    try {
      const [sys] = await this.#query<{ id: unknown }>('reading the server identity', 'SELECT system_identifier::text AS id FROM pg_control_system()');
      location.systemIdentifier = toText(sys?.id) || null;
    } catch (e) {
      // pg_control_system() may be revoked from the auditor's role: the chain is then known
      // by database, OID, table and first row, which is enough never to skip a row.
      const code = (e as { code?: string }).code;
      if (code === '42501' || /permission denied/i.test(String((e as Error).message))) {
        location.systemIdentifierUnavailable = "permission denied for pg_control_system() (GRANT EXECUTE ON FUNCTION pg_control_system() TO the auditor's role)";
      } else throw e;
    }
    return location;
  }

  async chainExtent(afterId: number, opts: { timeoutMs?: number; count?: boolean } = {}): Promise<ChainExtent> {
    const [max] = await this.#query<{ last: unknown }>('reading the last audit row id', `SELECT max(id) AS last FROM ${this.#t.audit}`);
    const lastId = max?.last === null || max?.last === undefined ? null : toId(max.last, 'max(id)');
    if (lastId === null || lastId <= afterId) return { rowsAfter: 0, lastId };
    if (opts.count === false) return { rowsAfter: null, lastId };
    // Counting is a scan of what is left: bounded by its own short timeout, and only a nicety.
    const timeout = Math.max(1, Math.min(opts.timeoutMs ?? 2000, this.#cfg.statement_timeout));
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw this.#explain(e, 'counting audit rows');
    }
    let failed = false;
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`SET LOCAL statement_timeout = ${timeout}`);
      const r = await client.query<{ n: unknown }>({ text: `SELECT count(*) AS n FROM ${this.#t.audit} WHERE id > $1`, values: [afterId], query_timeout: timeout + 5_000 } as QueryConfig);
      await client.query('COMMIT');
      return { rowsAfter: Number(r.rows[0]?.n ?? 0), lastId };
    } catch (e) {
      failed = (e as { code?: string }).code !== '57014';
      if (!failed) {
        await client.query('ROLLBACK').catch(() => (failed = true));
        return { rowsAfter: null, lastId };
      }
      throw this.#explain(e, 'counting audit rows');
    } finally {
      client.release(failed);
    }
  }

  async rowById(id: number): Promise<AuditRow | undefined> {
    const rows = await this.#query('reading an audit row', `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} WHERE id = $1`, [id]);
    return rows[0] ? this.#auditRow(rows[0]) : undefined;
  }

  async rootsAfter(afterId: number): Promise<RootRow[]> {
    const rows = await this.#query('reading transparency roots', `SELECT ${ROOT_COLUMNS} FROM ${this.#t.roots} WHERE id > $1 ORDER BY id`, [afterId]);
    return rows.map((r) => this.#rootRow(r));
  }

  async firstRow(): Promise<AuditRow | undefined> {
    const rows = await this.#query('reading the first audit row', `SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} ORDER BY id ASC LIMIT 1`);
    return rows[0] ? this.#auditRow(rows[0]) : undefined;
  }

  async *apiKeys(): AsyncIterable<ApiKeyRow> {
    // api_keys is small next to audit_log, but stream it anyway: it has no natural bound.
    const client = await guard(SOURCE, 'reading api keys', () => this.#pool.connect());
    const cursor = client.query(new Cursor(`SELECT id, created_at, last_used_at, revoked_at FROM ${this.#t.apiKeys} ORDER BY created_at`));
    let failed = false;
    try {
      for (;;) {
        let batch: Record<string, unknown>[];
        try {
          batch = await cursor.read(1000);
        } catch (e) {
          failed = true;
          throw this.#explain(e, 'reading api keys');
        }
        if (batch.length === 0) return;
        for (const r of batch) {
          const id = toText(r.id);
          yield {
            id,
            createdAt: toDate(r.created_at, `${this.#cfg.tables.api_keys} id=${id}`),
            lastUsedAt: isValidDate(r.last_used_at) ? r.last_used_at : null,
            revokedAt: isValidDate(r.revoked_at) ? r.revoked_at : null,
          };
        }
      }
    } finally {
      await cursor.close().catch(() => undefined);
      client.release(failed);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }
}
