/**
 * The auditor's own state (checkpoints): a folder of JSON files by default, or a table in
 * the auditor's own Postgres schema. Never holds a secret.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import type { StateStore } from '../core/sources';
import type { AuditConfig } from '../config/schema';
import { guard } from './errors';

export interface ClosableStateStore extends StateStore {
  close(): Promise<void>;
}

function fileName(key: string): string {
  return key.replace(/[^A-Za-z0-9_.-]/g, '_') + '.json';
}

export class FileStateStore implements ClosableStateStore {
  constructor(readonly dir: string) {}

  async get<T>(key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, fileName(key)), 'utf8')) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // A corrupt checkpoint is treated as none: the next run verifies from the start.
      if (e instanceof SyntaxError) return undefined;
      throw e;
    }
  }

  async set<T>(key: string, value: T): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, fileName(key));
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(value), 'utf8');
    await rename(tmp, file);
  }

  async close(): Promise<void> {}
}

export class PostgresStateStore implements ClosableStateStore {
  readonly #pool: Pool;
  readonly #table: string;
  #ready: Promise<void> | undefined;

  constructor(url: string, schema: string) {
    this.#pool = new Pool({ connectionString: url, max: 2, idleTimeoutMillis: 1000, application_name: 'aegis-audit-state' });
    this.#pool.on('error', () => undefined);
    this.#table = `"${schema.replace(/"/g, '""')}".state`;
    this.schema = schema;
  }

  readonly schema: string;

  #init(): Promise<void> {
    this.#ready ??= guard('state', 'creating the state table', async () => {
      await this.#pool.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema.replace(/"/g, '""')}"`);
      await this.#pool.query(`CREATE TABLE IF NOT EXISTS ${this.#table} (key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
    });
    return this.#ready;
  }

  async get<T>(key: string): Promise<T | undefined> {
    await this.#init();
    const r = await guard('state', 'reading state', () => this.#pool.query<{ value: T }>(`SELECT value FROM ${this.#table} WHERE key = $1`, [key]));
    return r.rows[0]?.value;
  }

  async set<T>(key: string, value: T): Promise<void> {
    await this.#init();
    await guard('state', 'writing state', () =>
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

export function createStateStore(config: AuditConfig): ClosableStateStore {
  if (config.state.postgres) return new PostgresStateStore(config.state.postgres.url, config.state.postgres.schema);
  return new FileStateStore(config.state.dir ?? resolve('.aegis-audit', 'state'));
}
