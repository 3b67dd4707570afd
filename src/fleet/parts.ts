/**
 * Parts of one long check run that any replica can take (receipt-chain's first pass, cut into
 * id ranges): a second pg-boss queue beside the checks', in the same schema.
 *
 * - A pass is planned once: its parts are rows of `<schema>.fleet_parts` (pass, index, the
 *   part's data) and one job each, whose id is derived from (pass, index) — planning the same
 *   pass again (a coordinator that restarted) adds nothing. The queue's policy is `singleton`
 *   with the key `<pass>/<index>`: one replica at a time runs a part.
 * - A part whose replica dies stays active until its expiry, then the queue's maintenance
 *   fails it and it is retried, with backoff, by whichever replica fetches it.
 * - A part's result is stored in its row by the replica that finished it first (a part
 *   retried after an expiry while its first run was only slow is stored once). The pass's
 *   coordinator reads the results back; the queue knows nothing of what they mean.
 */
import PgBoss from 'pg-boss';
import { Pool } from 'pg';
import { describeError } from '../core/redact';
import { newBoss, quoteIdent, startBoss, uuidOf, type QueueOptions } from './boss';

export const PARTS_QUEUE = 'aegis-audit-parts';

export interface PartJob {
  deployment: string;
  check: string;
  pass: string;
  index: number;
  data: Record<string, unknown>;
}

export type PartsQueueOptions = QueueOptions;

/** A part as stored: done when it has a result. */
export interface PartState {
  index: number;
  data: Record<string, unknown>;
  replica: string | null;
  attempts: number;
  done: boolean;
  result: unknown;
}

export function partJobId(pass: string, index: number): string {
  return uuidOf(`aegis-audit-part\0${pass}\0${index}`);
}

export class PartsQueue {
  readonly #opts: PartsQueueOptions;
  #boss: PgBoss;
  readonly #pool: Pool;
  readonly #schema: string;
  #started: Promise<void> | undefined;
  #working = false;
  readonly #active = new Set<Promise<unknown>>();

  constructor(opts: PartsQueueOptions) {
    this.#opts = opts;
    this.#schema = quoteIdent(opts.schema);
    this.#boss = this.#newBoss();
    this.#pool = new Pool({ connectionString: opts.url, max: 2, idleTimeoutMillis: 1000, application_name: 'aegis-audit-parts', connectionTimeoutMillis: 5_000, statement_timeout: 30_000 });
    this.#pool.on('error', () => undefined);
  }

  #newBoss(): PgBoss {
    const o = this.#opts;
    return newBoss({ url: o.url, schema: o.schema, applicationName: 'aegis-audit-parts', concurrency: o.concurrency, maintenanceIntervalMs: o.maintenanceIntervalMs, logger: o.logger, errorMessage: 'Parts queue error' });
  }

  /**
   * Creates the parts' queue and table. As the checks' queue (src/fleet/queue.ts): replicas
   * starting together take turns under the same session advisory lock, and a failed start is
   * retried with backoff for `startTimeoutMs` (default 60 s), each failure logged.
   */
  start(): Promise<void> {
    this.#started ??= this.#startWithRetry().catch((e: unknown) => {
      this.#started = undefined;
      throw e;
    });
    return this.#started;
  }

  #startWithRetry(): Promise<void> {
    return startBoss({
      pool: this.#pool,
      schema: this.#opts.schema,
      logger: this.#opts.logger,
      what: 'the parts queue',
      startTimeoutMs: this.#opts.startTimeoutMs,
      boss: () => this.#boss,
      replace: () => {
        this.#boss = this.#newBoss();
      },
      queue: { name: PARTS_QUEUE, retryLimit: this.#opts.retryLimit, retryDelayMs: this.#opts.retryDelayMs },
      setup: async (c) => {
        await c.query(`CREATE TABLE IF NOT EXISTS ${this.#schema}.fleet_parts (
          pass text NOT NULL, idx int NOT NULL, deployment text NOT NULL, check_id text NOT NULL, data jsonb NOT NULL,
          planned_at timestamptz NOT NULL DEFAULT now(), replica text, attempts int NOT NULL DEFAULT 0, started_at timestamptz,
          finished_at timestamptz, result jsonb, PRIMARY KEY (pass, idx))`);
      },
    });
  }

  /**
   * Plans the parts of a pass and enqueues one job each; a pass planned before keeps its parts,
   * and those of its parts not done whose job is gone (failed every retry) are queued again.
   */
  async submit(job: { deployment: string; check: string; pass: string }, parts: readonly { index: number; data: Record<string, unknown> }[], expireInMs: number): Promise<void> {
    await this.start();
    if (parts.length === 0) return;
    const added = await this.#pool.query<{ idx: number }>(
      `INSERT INTO ${this.#schema}.fleet_parts (pass, idx, deployment, check_id, data)
       SELECT $1, i, $2, $3, d FROM unnest($4::int[], $5::jsonb[]) AS u(i, d)
       ON CONFLICT (pass, idx) DO NOTHING RETURNING idx`,
      [job.pass, job.deployment, job.check, parts.map((p) => p.index), parts.map((p) => JSON.stringify(p.data))],
    );
    const fresh = new Set(added.rows.map((r) => r.idx));
    // A part planned before, not done, whose job is gone (it failed every retry, or was archived): queued again.
    const unfinished = await this.#pool.query<{ idx: number; attempts: number }>(`SELECT idx, attempts FROM ${this.#schema}.fleet_parts WHERE pass = $1 AND finished_at IS NULL`, [job.pass]);
    const stale = unfinished.rows.filter((r) => !fresh.has(r.idx));
    const live = new Set<string>();
    if (stale.length > 0) {
      const r = await this.#pool.query<{ singleton_key: string }>(
        `SELECT DISTINCT singleton_key FROM ${this.#schema}.job WHERE name = $1 AND state < 'completed' AND singleton_key = ANY($2::text[])`,
        [PARTS_QUEUE, stale.map((p) => `${job.pass}/${p.idx}`)],
      );
      for (const row of r.rows) live.add(row.singleton_key);
    }
    const again = new Map(stale.filter((p) => !live.has(`${job.pass}/${p.idx}`)).map((p) => [p.idx, p.attempts]));
    const todo = parts.filter((p) => fresh.has(p.index) || again.has(p.index));
    for (let i = 0; i < todo.length; i += 500) {
      await this.#boss.insert(
        todo.slice(i, i + 500).map((p) => ({
          id: again.has(p.index) ? partJobId(`${job.pass}\0again-${again.get(p.index)}`, p.index) : partJobId(job.pass, p.index),
          name: PARTS_QUEUE,
          data: { ...job, index: p.index, data: p.data } satisfies PartJob,
          singletonKey: `${job.pass}/${p.index}`,
          expireInSeconds: Math.max(1, Math.ceil(expireInMs / 1000)),
        })),
      );
    }
  }

  /** The parts of a pass, done or not, by index. */
  async parts(pass: string): Promise<PartState[]> {
    await this.start();
    const r = await this.#pool.query(`SELECT idx, data, replica, attempts, finished_at, result FROM ${this.#schema}.fleet_parts WHERE pass = $1 ORDER BY idx`, [pass]);
    return r.rows.map((row) => ({ index: row.idx, data: row.data, replica: row.replica, attempts: row.attempts, done: row.finished_at !== null, result: row.result }));
  }

  /** Drops the parts of passes planned before `before`. */
  async prune(before: Date): Promise<void> {
    await this.#pool.query(`DELETE FROM ${this.#schema}.fleet_parts WHERE planned_at < $1`, [before]);
  }

  /** Starts the worker slots: each part is run with `run` and its result stored (first finisher wins). */
  async work(run: (job: PartJob) => Promise<unknown>): Promise<void> {
    await this.start();
    if (this.#working) return;
    this.#working = true;
    const pollingIntervalSeconds = Math.max(0.5, (this.#opts.pollIntervalMs ?? 1000) / 1000);
    for (let i = 0; i < this.#opts.concurrency; i++) {
      await this.#boss.work<PartJob>(PARTS_QUEUE, { batchSize: 1, pollingIntervalSeconds }, async ([job]) => {
        const p = this.#runJob(job.data, run);
        this.#active.add(p);
        try {
          await p;
        } finally {
          this.#active.delete(p);
        }
      });
    }
  }

  async #runJob(job: PartJob, run: (job: PartJob) => Promise<unknown>): Promise<void> {
    const s = this.#schema;
    const claimed = await this.#pool.query(
      `UPDATE ${s}.fleet_parts SET replica = $3, attempts = attempts + 1, started_at = now() WHERE pass = $1 AND idx = $2 AND finished_at IS NULL RETURNING idx`,
      [job.pass, job.index, this.#opts.replica],
    );
    // Done already (a retry of a part whose first run was only slow), or its pass was dropped.
    if (claimed.rowCount === 0) return;
    let result: unknown;
    try {
      result = await run(job);
    } catch (e) {
      this.#opts.logger.error({ deployment: job.deployment, check: job.check, part: job.index, err: describeError(e) }, 'A queued part of a check failed; it will be retried');
      throw e;
    }
    await this.#pool.query(`UPDATE ${s}.fleet_parts SET result = $3::jsonb, finished_at = now(), replica = $4 WHERE pass = $1 AND idx = $2 AND finished_at IS NULL`, [
      job.pass,
      job.index,
      JSON.stringify(result),
      this.#opts.replica,
    ]);
  }

  activeCount(): number {
    return this.#active.size;
  }

  async close(deadlineMs: number): Promise<void> {
    if (this.#working) await this.#boss.offWork(PARTS_QUEUE).catch(() => undefined);
    await Promise.race([Promise.allSettled([...this.#active]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    await this.#boss.stop({ graceful: false, wait: true, timeout: 1000 }).catch(() => undefined);
    await this.#pool.end().catch(() => undefined);
  }
}
