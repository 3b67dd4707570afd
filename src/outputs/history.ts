/**
 * Run history, so a report can say what changed since the previous run: a folder of
 * reports by default (`<outputs.dir>/history/`), or a table in the auditor's own Postgres
 * schema (`state.postgres`) when several replicas must share it. Both keep the last
 * `history_keep` runs per deployment. Reports hold no secret, so storing them is safe.
 */
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import type { AuditConfig } from '../config/schema';
import { serialised, writeFileAtomic } from '../core/atomic-write';
import { AuditError, ErrorCodes } from '../core/errors';
import { describeError } from '../core/redact';
import { SEVERITIES, type Report, type Severity } from '../core/types';
import { formatJsonReport, parseReport } from './json';

/** One past run, reduced to what the trend chart needs: open (not waived, not info) findings by severity. */
export interface RunCounts {
  runId: string;
  finishedAt: string;
  open: Record<Severity, number>;
}

export function countsOf(report: Report): RunCounts {
  const open = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const r of report.results) for (const f of r.findings) if (!f.waived && f.severity !== 'info') open[f.severity]++;
  return { runId: report.runId, finishedAt: report.finishedAt, open };
}

export interface HistoryStore {
  /** The most recent saved report of this deployment, if any. */
  previous(deployment: string): Promise<Report | undefined>;
  /** Open findings by severity of the last `limit` saved runs of this deployment, oldest first. */
  recent(deployment: string, limit: number): Promise<RunCounts[]>;
  /** Saves a report and prunes the deployment's history to the configured size. */
  save(report: Report): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_HISTORY_KEEP = 50;

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_') || '_';
}

/**
 * `<dir>/<deployment>/<finishedAt>--<runId>.json`: names sort in run order. Beside each, a small
 * `.counts` file holds its open findings by severity, so the trend never re-reads whole reports.
 */
export class DirectoryHistoryStore implements HistoryStore {
  constructor(
    readonly dir: string,
    readonly keep: number = DEFAULT_HISTORY_KEEP,
  ) {}

  #folder(deployment: string): string {
    return join(this.dir, safeName(deployment));
  }

  async #files(deployment: string): Promise<string[]> {
    try {
      return (await readdir(this.#folder(deployment))).filter((f) => f.endsWith('.json')).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  async previous(deployment: string): Promise<Report | undefined> {
    const files = await this.#files(deployment);
    // Newest first; a corrupt or foreign file is skipped rather than blocking every future run.
    for (let i = files.length - 1; i >= 0; i--) {
      const file = join(this.#folder(deployment), files[i]);
      try {
        return parseReport(JSON.parse(await readFile(file, 'utf8')), file);
      } catch {
        continue;
      }
    }
    return undefined;
  }

  async recent(deployment: string, limit: number): Promise<RunCounts[]> {
    const files = (await this.#files(deployment)).slice(-limit);
    const out: RunCounts[] = [];
    for (const f of files) {
      const file = join(this.#folder(deployment), f);
      try {
        out.push(JSON.parse(await readFile(`${file}.counts`, 'utf8')) as RunCounts);
      } catch {
        // Saved before counts existed (or the counts file is damaged): count the report itself.
        try {
          out.push(countsOf(parseReport(JSON.parse(await readFile(file, 'utf8')), file)));
        } catch {
          continue;
        }
      }
    }
    return out;
  }

  /** Saves atomically, with its counts beside it; saves of one deployment take turns, so pruning never races a write. */
  save(report: Report): Promise<void> {
    const folder = this.#folder(report.deployment);
    return serialised(folder, async () => {
      const stamp = report.finishedAt.replace(/[:]/g, '-');
      const file = join(folder, `${safeName(stamp)}--${safeName(report.runId)}.json`);
      await writeFileAtomic(file, formatJsonReport(report));
      await writeFileAtomic(`${file}.counts`, JSON.stringify(countsOf(report)));
      const files = await this.#files(report.deployment);
      for (const old of files.slice(0, Math.max(0, files.length - this.keep))) {
        await unlink(join(folder, old)).catch(() => undefined);
        await unlink(join(folder, `${old}.counts`)).catch(() => undefined);
      }
    });
  }

  async close(): Promise<void> {}
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AuditError) throw e;
    // describeError strips URLs' credentials: a connection string never reaches the message.
    throw new AuditError(ErrorCodes.SOURCE_UNAVAILABLE, `history: ${what}: ${describeError(e)}`, { source: 'history', reason: 'error' });
  }
}

/** `<schema>.run_history(run_id, deployment, finished_at, report jsonb)` in the auditor's own schema. */
export class PostgresHistoryStore implements HistoryStore {
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #table: string;
  #ready: Promise<void> | undefined;

  constructor(
    url: string,
    schema: string,
    readonly keep: number = DEFAULT_HISTORY_KEEP,
  ) {
    // Bounded everywhere: a silent history database must fail the write, not hang the run.
    this.#pool = new Pool({
      connectionString: url,
      max: 2,
      idleTimeoutMillis: 1000,
      application_name: 'aegis-audit-history',
      connectionTimeoutMillis: 5_000,
      statement_timeout: 30_000,
      query_timeout: 35_000,
    });
    // An idle client's error must not crash the process; the next query reports it.
    this.#pool.on('error', () => undefined);
    this.#schema = quoteIdent(schema);
    this.#table = `${this.#schema}.run_history`;
  }

  #init(): Promise<void> {
    this.#ready ??= guarded('creating the run_history table', async () => {
      await this.#pool.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
      await this.#pool.query(
        `CREATE TABLE IF NOT EXISTS ${this.#table} (run_id text PRIMARY KEY, deployment text NOT NULL, finished_at timestamptz NOT NULL, report jsonb NOT NULL)`,
      );
      await this.#pool.query(`CREATE INDEX IF NOT EXISTS run_history_deployment_finished ON ${this.#table} (deployment, finished_at DESC)`);
    }).catch((e: unknown) => {
      this.#ready = undefined; // retry on the next call
      throw e;
    });
    return this.#ready;
  }

  async previous(deployment: string): Promise<Report | undefined> {
    await this.#init();
    const r = await guarded('reading the previous run', () =>
      this.#pool.query<{ report: unknown; run_id: string }>(
        `SELECT run_id, report FROM ${this.#table} WHERE deployment = $1 ORDER BY finished_at DESC, run_id DESC LIMIT 1`,
        [deployment],
      ),
    );
    const row = r.rows[0];
    return row ? parseReport(row.report, `${this.#table} run ${row.run_id}`) : undefined;
  }

  async recent(deployment: string, limit: number): Promise<RunCounts[]> {
    await this.#init();
    // Counted in the database: the reports themselves never cross the wire.
    const r = await guarded('reading the recent runs', () =>
      this.#pool.query<{ run_id: string; finished_at: Date; severity: Severity | null; n: string }>(
        `WITH runs AS (
           SELECT run_id, finished_at, report FROM ${this.#table} WHERE deployment = $1 ORDER BY finished_at DESC, run_id DESC LIMIT $2)
         SELECT runs.run_id, runs.finished_at, f->>'severity' AS severity, count(f) AS n
           FROM runs
           LEFT JOIN LATERAL jsonb_array_elements(runs.report->'results') AS res ON true
           LEFT JOIN LATERAL jsonb_array_elements(res->'findings') AS f ON f->>'severity' <> 'info' AND NOT (f ? 'waived')
          GROUP BY runs.run_id, runs.finished_at, f->>'severity'
          ORDER BY runs.finished_at, runs.run_id`,
        [deployment, limit],
      ),
    );
    const byRun = new Map<string, RunCounts>();
    for (const row of r.rows) {
      let c = byRun.get(row.run_id);
      if (!c) {
        c = { runId: row.run_id, finishedAt: new Date(row.finished_at).toISOString(), open: Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number> };
        byRun.set(row.run_id, c);
      }
      if (row.severity && (SEVERITIES as readonly string[]).includes(row.severity)) c.open[row.severity] = Number(row.n);
    }
    return [...byRun.values()];
  }

  async save(report: Report): Promise<void> {
    await this.#init();
    await guarded('saving the run', async () => {
      await this.#pool.query(
        `INSERT INTO ${this.#table} (run_id, deployment, finished_at, report) VALUES ($1, $2, $3, $4::jsonb)
         ON CONFLICT (run_id) DO UPDATE SET deployment = EXCLUDED.deployment, finished_at = EXCLUDED.finished_at, report = EXCLUDED.report`,
        [report.runId, report.deployment, report.finishedAt, JSON.stringify(report)],
      );
      await this.#pool.query(
        `DELETE FROM ${this.#table} WHERE deployment = $1 AND run_id NOT IN (
           SELECT run_id FROM ${this.#table} WHERE deployment = $1 ORDER BY finished_at DESC, run_id DESC LIMIT $2)`,
        [report.deployment, this.keep],
      );
    });
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * The configured history: Postgres when `state.postgres` is set, else `<outputs dir>/history/`
 * (`outputsDir` is the run's output directory, e.g. from `--out`; default `outputs.dir`).
 */
export function createHistoryStore(config: AuditConfig, opts: { outputsDir?: string } = {}): HistoryStore {
  const keep = config.outputs.history_keep;
  const pg = config.state.postgres;
  if (pg) return new PostgresHistoryStore(pg.url, pg.schema, keep);
  return new DirectoryHistoryStore(resolve(opts.outputsDir ?? config.outputs.dir, 'history'), keep);
}
