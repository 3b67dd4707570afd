/**
 * The audit database (pg). Table and schema names come from config; large tables are
 * streamed with a cursor and never loaded whole.
 */
import { Pool, type PoolClient, type QueryConfig, type QueryResultRow } from 'pg';
import Cursor from 'pg-cursor';
import type { ApiKeyRow, AuditDb, AuditRow, FingerprintUsage, HistoricalKey, RootRow } from '../core/sources';
import type { PostgresConfig } from '../config/schema';
import { badData } from '../core/errors';
import { guard, stopIfAborted, wrapSourceError } from './errors';
import { sourceUnavailable } from '../core/errors';
import { isValidDate } from '../core/time';

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

const AUDIT_COLUMNS = 'id, created_at, action, payload, prev_hash, row_hash, signature, key_fingerprint';
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
    if (code === '42703') return sourceUnavailable(SOURCE, 'schema_mismatch', `${what}: a column the auditor reads is missing (see DESIGN.md for the expected table shapes)`);
    return wrapSourceError(SOURCE, what, e);
  }

  async #query<R extends QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      // statement_timeout is enforced by the server, so it cannot end a query the server never
      // received (a hung server or a dead network); query_timeout is the client's own bound.
      // Cursor streams are left without it: they legitimately run long, batch by batch.
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
      prevHash: toText(r.prev_hash),
      rowHash: toText(r.row_hash),
      signature: toText(r.signature),
      keyFingerprint: toText(r.key_fingerprint),
    };
  }

  #rootRow(r: Record<string, unknown>): RootRow {
    const id = toId(r.id, `${this.#cfg.tables.roots} row`);
    const where = `${this.#cfg.tables.roots} row id=${id}`;
    return {
      id,
      createdAt: toDate(r.created_at, where),
      upToId: toId(r.up_to_id, where),
      rootHash: toText(r.root_hash),
      signature: toText(r.signature),
      keyFingerprint: toText(r.key_fingerprint),
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
      fingerprint: toText(r.fingerprint),
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
      fingerprint: toText(r.fp),
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

  async *streamRows(afterId: number, opts: { batchSize?: number; signal?: AbortSignal } = {}): AsyncIterable<AuditRow[]> {
    const batchSize = opts.batchSize ?? 5000;
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw this.#explain(e, 'streaming audit rows');
    }
    const cursor = client.query(new Cursor(`SELECT ${AUDIT_COLUMNS} FROM ${this.#t.audit} WHERE id > $1 ORDER BY id`, [afterId]));
    let failed = false;
    try {
      for (;;) {
        stopIfAborted(opts.signal, SOURCE, 'streaming audit rows');
        let batch: Record<string, unknown>[];
        try {
          batch = await cursor.read(batchSize);
        } catch (e) {
          failed = true;
          throw this.#explain(e, 'streaming audit rows');
        }
        if (batch.length === 0) return;
        yield batch.map((r) => this.#auditRow(r));
      }
    } finally {
      await cursor.close().catch(() => undefined);
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
