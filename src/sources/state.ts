/**
 * The auditor's own state (checkpoints): a folder of JSON files by default, or a table in
 * the auditor's own Postgres schema. Never holds a secret.
 *
 * The folder is `state.dir`, relative to the config file like every path in it (default
 * `.aegis-audit/state` beside the config). A check keys its state by what the state
 * describes — receipt-chain by the identity of the chain — so two configs share a
 * checkpoint only when they audit the same thing.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import { writeFileAtomic } from '../core/atomic-write';
import type { StateRead, StateStore } from '../core/sources';
import type { AuditConfig } from '../config/schema';
import { guard, wrapSourceError } from './errors';

const SOURCE = 'state';

export interface ClosableStateStore extends StateStore {
  close(): Promise<void>;
}

function fileName(key: string): string {
  return key.replace(/[^A-Za-z0-9_.-]/g, '_') + '.json';
}

export class FileStateStore implements ClosableStateStore {
  constructor(readonly dir: string) {}

  /** The file a key is stored in. */
  fileOf(key: string): string {
    return join(this.dir, fileName(key));
  }

  async read<T>(key: string): Promise<StateRead<T>> {
    const file = this.fileOf(key);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'absent' };
      throw wrapSourceError(SOURCE, `reading ${file}`, e);
    }
    try {
      return { status: 'ok', value: JSON.parse(text) as T };
    } catch {
      // Never quote the content: it is ours, but a reason is enough to act on.
      return { status: 'unreadable', reason: `${file} is not valid JSON (${text.length} bytes; corrupt or cut short)` };
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    const r = await this.read<T>(key);
    return r.status === 'ok' ? r.value : undefined;
  }

  async set<T>(key: string, value: T): Promise<void> {
    const file = this.fileOf(key);
    await guard(SOURCE, `writing ${file}`, async () => {
      await mkdir(this.dir, { recursive: true });
      // Written beside and renamed over: a crash mid-write leaves the old checkpoint whole.
      await writeFileAtomic(file, JSON.stringify(value));
    });
  }

  async close(): Promise<void> {}
}

export class PostgresStateStore implements ClosableStateStore {
  readonly #pool: Pool;
  readonly #table: string;
  #ready: Promise<void> | undefined;

  constructor(url: string, schema: string, opts: { connectTimeoutMs?: number; statementTimeoutMs?: number } = {}) {
    // pg waits forever by default, on connect and on a query: a silent state database would
    // hang the check past its timeout and then the run's close().
    const statementTimeout = opts.statementTimeoutMs ?? 30_000;
    this.#pool = new Pool({
      connectionString: url,
      max: 2,
      idleTimeoutMillis: 1000,
      application_name: 'aegis-audit-state',
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      statement_timeout: statementTimeout,
      query_timeout: statementTimeout + 5_000,
    });
    this.#pool.on('error', () => undefined);
    this.#table = `"${schema.replace(/"/g, '""')}".state`;
    this.schema = schema;
  }

  readonly schema: string;

  #init(): Promise<void> {
    this.#ready ??= guard(SOURCE, 'creating the state table', async () => {
      await this.#pool.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema.replace(/"/g, '""')}"`);
      await this.#pool.query(`CREATE TABLE IF NOT EXISTS ${this.#table} (key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
    });
    return this.#ready;
  }

  async read<T>(key: string): Promise<StateRead<T>> {
    await this.#init();
    const r = await guard(SOURCE, 'reading state', () => this.#pool.query<{ value: T }>(`SELECT value FROM ${this.#table} WHERE key = $1`, [key]));
    // jsonb is always valid JSON: a value is either there or not.
    return r.rows.length === 0 ? { status: 'absent' } : { status: 'ok', value: r.rows[0].value };
  }

  async get<T>(key: string): Promise<T | undefined> {
    const r = await this.read<T>(key);
    return r.status === 'ok' ? r.value : undefined;
  }

  async set<T>(key: string, value: T): Promise<void> {
    await this.#init();
    await guard(SOURCE, 'writing state', () =>
      this.#pool.query(
        `INSERT INTO ${this.#table} (key, value, updated_at) VALUES ($1, $2, now()) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
        [key, JSON.stringify(value)],
      ),
    );
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }
}

/** The default folder when `state.dir` is not set and no config file says where (tests building configs in memory). */
export const DEFAULT_STATE_DIR = join('.aegis-audit', 'state');

export function createStateStore(config: AuditConfig): ClosableStateStore {
  if (config.state.postgres) return new PostgresStateStore(config.state.postgres.url, config.state.postgres.schema);
  // The loader resolves state.dir (default included) against the config file's folder.
  return new FileStateStore(resolve(config.state.dir ?? DEFAULT_STATE_DIR));
}
