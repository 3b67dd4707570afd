/**
 * Replicas share the checks through a job queue in the auditor's own Postgres schema: pg-boss
 * (bench/queue.ts measured it against graphile-worker; pg-boss retries a dead replica's job
 * after its expiry, graphile-worker only after a fixed 4 hours).
 *
 * - A job is one run of one check of one deployment, for one schedule tick. Its id is derived
 *   from (deployment, check, tick), so the same tick enqueued twice (two schedulers for a
 *   moment) is one job. The scheduler does not enqueue a tick while that check still has a
 *   job queued, waiting to retry or running: a slow check skips ticks, as node-cron's
 *   noOverlap does for one daemon.
 * - The queue's policy is `singleton` with the singleton key `<deployment>/<check>`: Postgres
 *   itself (a unique index on active jobs) refuses a second running job of one check.
 * - A job whose replica dies stays active until its expiry (the check's timeout plus
 *   `expire_grace`); pg-boss's maintenance then fails it and it is retried, with exponential
 *   backoff, by whichever replica fetches it first. A replica that stops gracefully fails its
 *   running jobs at once, so they are retried without waiting for the expiry.
 * - Every attempt is logged in `<schema>.fleet_runs` (replica, start, end, outcome), and each
 *   check's latest result lands in `<schema>.fleet_latest`, which the leader exports.
 *
 * This module knows jobs and results, not checks or outputs: the daemon hands it what runs a
 * job and reads results back.
 */
import { hostname } from 'node:os';
import PgBoss from 'pg-boss';
import { Pool } from 'pg';
import { describeError } from '../core/redact';
import { newBoss, quoteIdent, startBoss, uuidOf, type QueueOptions } from './boss';
import type { CheckResult } from '../core/types';

export const FLEET_QUEUE = 'aegis-audit-checks';

export interface FleetJob {
  deployment: string;
  check: string;
  /** The schedule tick (ISO time) this run is for. */
  tick: string;
}

export type FleetQueueOptions = QueueOptions;

export interface EnqueueItem extends FleetJob {
  /** How long a run may stay active before it is taken for dead: the check's timeout plus a grace. */
  expireInMs: number;
}

/** One attempt of a job, as the run log keeps it. */
export interface FleetRun {
  jobId: string;
  attempt: number;
  deployment: string;
  check: string;
  tick: Date;
  replica: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: string | null;
}

/** The latest shared result of a check, with who ran it and when. */
export interface LatestResult {
  deployment: string;
  check: string;
  result: CheckResult;
  finishedAt: Date;
  replica: string;
}

/** What a replica's worker did, for its own metrics. */
export interface WorkerEvent {
  deployment: string;
  check: string;
  /** A check result status, or `crashed` (the run threw; the job is retried). */
  outcome: string;
  durationMs: number;
}

export function defaultReplicaName(): string {
  return `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40) || 'replica'}-${process.pid}`;
}

/** The singleton key of a check's jobs: one running at a time per (deployment, check). */
export function jobKey(deployment: string, check: string): string {
  return `${deployment}/${check}`;
}

/** A UUID (version 5 layout, from SHA-1) of (deployment, check, tick): one job per tick however often it is enqueued. */
export function jobId(job: FleetJob): string {
  return uuidOf(`aegis-audit\0${job.deployment}\0${job.check}\0${job.tick}`);
}

export class FleetQueue {
  readonly #opts: FleetQueueOptions;
  #boss: PgBoss;
  readonly #pool: Pool;
  readonly #schema: string;
  #started: Promise<void> | undefined;
  #working = false;
  readonly #active = new Set<Promise<unknown>>();

  constructor(opts: FleetQueueOptions) {
    this.#opts = opts;
    this.#schema = quoteIdent(opts.schema);
    this.#boss = this.#newBoss();
    this.#pool = new Pool({
      connectionString: opts.url,
      max: 2,
      idleTimeoutMillis: 1000,
      application_name: 'aegis-audit-queue',
      connectionTimeoutMillis: 5_000,
      statement_timeout: 30_000,
    });
    this.#pool.on('error', () => undefined);
  }

  #newBoss(): PgBoss {
    const o = this.#opts;
    return newBoss({ url: o.url, schema: o.schema, applicationName: 'aegis-audit-queue', concurrency: o.concurrency, maintenanceIntervalMs: o.maintenanceIntervalMs, logger: o.logger, errorMessage: 'Job queue error' });
  }

  get replica(): string {
    return this.#opts.replica;
  }

  /**
   * Creates (or migrates) the queue's tables, the queue, and the run log and latest-result
   * tables. Idempotent across replicas: replicas starting together take turns (a session
   * advisory lock), so the first creates everything and the others find it made. A failed
   * start (Postgres not up yet, restarting, a lock timeout) is retried with backoff for
   * `startTimeoutMs` (default 60 s), each failure logged; then the error is thrown.
   */
  start(): Promise<void> {
    this.#started ??= this.#startWithRetry().catch((e: unknown) => {
      this.#started = undefined;
      throw e;
    });
    return this.#started;
  }

  #startWithRetry(): Promise<void> {
    const s = this.#schema;
    return startBoss({
      pool: this.#pool,
      schema: this.#opts.schema,
      logger: this.#opts.logger,
      what: 'the job queue',
      startTimeoutMs: this.#opts.startTimeoutMs,
      boss: () => this.#boss,
      replace: () => {
        this.#boss = this.#newBoss();
      },
      queue: { name: FLEET_QUEUE, retryLimit: this.#opts.retryLimit, retryDelayMs: this.#opts.retryDelayMs },
      setup: async (c) => {
        await c.query('BEGIN');
        try {
          await c.query(`CREATE TABLE IF NOT EXISTS ${s}.fleet_runs (
            job_id uuid NOT NULL, attempt int NOT NULL, deployment text NOT NULL, check_id text NOT NULL, tick timestamptz NOT NULL,
            replica text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz, outcome text,
            PRIMARY KEY (job_id, attempt))`);
          await c.query(`CREATE INDEX IF NOT EXISTS fleet_runs_check_started ON ${s}.fleet_runs (deployment, check_id, started_at)`);
          await c.query(`CREATE TABLE IF NOT EXISTS ${s}.fleet_latest (
            deployment text NOT NULL, check_id text NOT NULL, finished_at timestamptz NOT NULL, replica text NOT NULL, job_id uuid NOT NULL,
            result jsonb NOT NULL, PRIMARY KEY (deployment, check_id))`);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      },
    });
  }

  /**
   * Enqueues one job per item unless that check already has one queued, waiting to retry or
   * running. Returns the items enqueued (a job of the same tick enqueued before counts as not).
   */
  async enqueue(items: readonly EnqueueItem[]): Promise<EnqueueItem[]> {
    await this.start();
    if (items.length === 0) return [];
    const keys = items.map((i) => jobKey(i.deployment, i.check));
    const busy = await this.#pool.query<{ singleton_key: string }>(
      `SELECT DISTINCT singleton_key FROM ${this.#schema}.job WHERE name = $1 AND state < 'completed' AND singleton_key = ANY($2::text[])`,
      [FLEET_QUEUE, keys],
    );
    const pending = new Set(busy.rows.map((r) => r.singleton_key));
    const todo = items.filter((i) => !pending.has(jobKey(i.deployment, i.check)));
    if (todo.length === 0) return [];
    await this.#boss.insert(
      todo.map((i) => ({
        id: jobId(i),
        name: FLEET_QUEUE,
        data: { deployment: i.deployment, check: i.check, tick: i.tick } satisfies FleetJob,
        singletonKey: jobKey(i.deployment, i.check),
        expireInSeconds: Math.max(1, Math.ceil(i.expireInMs / 1000)),
      })),
    );
    return todo;
  }

  /**
   * Starts `concurrency` worker slots that fetch jobs and run them with `run`. A result is
   * stored as the check's latest and the attempt logged; a run that throws is logged as
   * crashed and the job retried (on any replica) after its backoff.
   */
  async work(run: (job: FleetJob, signal: { attempt: number }) => Promise<CheckResult>, onEvent?: (e: WorkerEvent) => void): Promise<void> {
    await this.start();
    if (this.#working) return;
    this.#working = true;
    const pollingIntervalSeconds = Math.max(0.5, (this.#opts.pollIntervalMs ?? 1000) / 1000);
    for (let i = 0; i < this.#opts.concurrency; i++) {
      await this.#boss.work<FleetJob>(FLEET_QUEUE, { batchSize: 1, pollingIntervalSeconds, includeMetadata: true }, async ([job]) => {
        const p = this.#runJob(job, run, onEvent);
        this.#active.add(p);
        try {
          await p;
        } finally {
          this.#active.delete(p);
        }
      });
    }
  }

  async #runJob(job: PgBoss.JobWithMetadata<FleetJob>, run: (job: FleetJob, signal: { attempt: number }) => Promise<CheckResult>, onEvent?: (e: WorkerEvent) => void): Promise<void> {
    const { deployment, check, tick } = job.data;
    const attempt = job.retryCount + 1;
    const s = this.#schema;
    const started = Date.now();
    await this.#pool.query(
      `INSERT INTO ${s}.fleet_runs (job_id, attempt, deployment, check_id, tick, replica, started_at) VALUES ($1, $2, $3, $4, $5, $6, now())
       ON CONFLICT (job_id, attempt) DO UPDATE SET replica = EXCLUDED.replica, started_at = EXCLUDED.started_at, finished_at = NULL, outcome = NULL`,
      [job.id, attempt, deployment, check, tick, this.#opts.replica],
    );
    let result: CheckResult;
    try {
      result = await run(job.data, { attempt });
    } catch (e) {
      this.#opts.logger.error({ deployment, check, attempt, err: describeError(e) }, 'Queued check run failed; it will be retried');
      await this.#finish(job.id, attempt, 'crashed').catch(() => undefined);
      onEvent?.({ deployment, check, outcome: 'crashed', durationMs: Date.now() - started });
      throw e;
    }
    // The latest result only moves forward: a retried old tick finishing late does not hide a newer run.
    await this.#pool.query(
      `INSERT INTO ${s}.fleet_latest (deployment, check_id, finished_at, replica, job_id, result) VALUES ($1, $2, now(), $3, $4, $5::jsonb)
       ON CONFLICT (deployment, check_id) DO UPDATE SET finished_at = EXCLUDED.finished_at, replica = EXCLUDED.replica, job_id = EXCLUDED.job_id, result = EXCLUDED.result
       WHERE ${s}.fleet_latest.finished_at <= EXCLUDED.finished_at`,
      [deployment, check, this.#opts.replica, job.id, JSON.stringify(result)],
    );
    await this.#finish(job.id, attempt, result.status);
    onEvent?.({ deployment, check, outcome: result.status, durationMs: Date.now() - started });
  }

  async #finish(jobIdValue: string, attempt: number, outcome: string): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#schema}.fleet_runs SET finished_at = now(), outcome = $3 WHERE job_id = $1 AND attempt = $2`, [jobIdValue, attempt, outcome]);
  }

  /** The latest shared result of each check of these deployments, finished after `since` when given. */
  async latest(deployments: readonly string[], since?: Date): Promise<LatestResult[]> {
    await this.start();
    const r = await this.#pool.query<{ deployment: string; check_id: string; finished_at: Date; replica: string; result: CheckResult }>(
      `SELECT deployment, check_id, finished_at, replica, result FROM ${this.#schema}.fleet_latest
        WHERE deployment = ANY($1::text[]) AND ($2::timestamptz IS NULL OR finished_at > $2) ORDER BY finished_at`,
      [deployments, since ?? null],
    );
    return r.rows.map((row) => ({ deployment: row.deployment, check: row.check_id, result: row.result, finishedAt: new Date(row.finished_at), replica: row.replica }));
  }

  /** The run log of these deployments since `since` (operators, and the tests that assert no overlap). */
  async runs(deployments: readonly string[], since: Date): Promise<FleetRun[]> {
    await this.start();
    const r = await this.#pool.query(
      `SELECT job_id, attempt, deployment, check_id, tick, replica, started_at, finished_at, outcome FROM ${this.#schema}.fleet_runs
        WHERE deployment = ANY($1::text[]) AND started_at >= $2 ORDER BY started_at`,
      [deployments, since],
    );
    return r.rows.map((row) => ({
      jobId: row.job_id,
      attempt: row.attempt,
      deployment: row.deployment,
      check: row.check_id,
      tick: new Date(row.tick),
      replica: row.replica,
      startedAt: new Date(row.started_at),
      finishedAt: row.finished_at ? new Date(row.finished_at) : null,
      outcome: row.outcome,
    }));
  }

  /** Drops run-log rows older than `before` (the leader prunes it). */
  async prune(before: Date): Promise<void> {
    await this.#pool.query(`DELETE FROM ${this.#schema}.fleet_runs WHERE started_at < $1`, [before]);
  }

  /** Checks running on this replica now. */
  activeCount(): number {
    return this.#active.size;
  }

  /** Stops fetching; waits for running checks up to `deadlineMs`; jobs still running are failed, so another replica retries them. */
  async close(deadlineMs: number): Promise<void> {
    if (this.#working) await this.#boss.offWork(FLEET_QUEUE).catch(() => undefined);
    await Promise.race([Promise.allSettled([...this.#active]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    await this.#boss.stop({ graceful: false, wait: true, timeout: 1000 }).catch(() => undefined);
    await this.#pool.end().catch(() => undefined);
  }
}
