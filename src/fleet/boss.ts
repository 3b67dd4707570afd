/**
 * What the fleet's two pg-boss queues (the checks' and the ranges' parts) share: how a pg-boss
 * is made for the auditor's schema, how replicas starting together start it, and the ids and
 * identifiers both derive.
 */
import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** A UUID (version 5 layout, from SHA-1) of a text: the same job however often it is enqueued. */
export function uuidOf(text: string): string {
  const h = createHash('sha1').update(text).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** What a queue of the fleet (the checks' or the ranges' parts) is made with. */
export interface QueueOptions {
  url: string;
  schema: string;
  /** This replica's name in the run log. */
  replica: string;
  /** Jobs this replica runs at once. */
  concurrency: number;
  retryLimit: number;
  retryDelayMs: number;
  maintenanceIntervalMs: number;
  logger: Logger;
  /** How long a failing start is retried before its error is thrown. Default 60 s. */
  startTimeoutMs?: number;
  /** Fetch interval of each worker slot (pg-boss polls; at least 500 ms). Default 1000. */
  pollIntervalMs?: number;
}

export interface BossOptions {
  url: string;
  schema: string;
  /** Postgres application_name of its connections. */
  applicationName: string;
  /** Jobs run at once (its pool gets two connections more). */
  concurrency: number;
  maintenanceIntervalMs: number;
  logger: Logger;
  /** The warning its errors are logged under. */
  errorMessage: string;
}

export function newBoss(o: BossOptions): PgBoss {
  const boss = new PgBoss({
    connectionString: o.url,
    schema: o.schema,
    application_name: o.applicationName,
    max: o.concurrency + 2,
    maintenanceIntervalSeconds: Math.max(1, Math.round(o.maintenanceIntervalMs / 1000)),
    // The daemon schedules (node-cron); pg-boss's cron and its state monitor stay off.
    schedule: false,
    // Finished jobs leave the live table after an hour and the archive after a day: at
    // fleet scale (docs/scale.md) the defaults (12 h, 7 days) would keep tens of millions of rows.
    archiveCompletedAfterSeconds: 3600,
    deleteAfterHours: 24,
  });
  boss.on('error', (e) => o.logger.warn({ err: describeError(e) }, o.errorMessage));
  return boss;
}

export interface StartOptions {
  pool: Pool;
  schema: string;
  logger: Logger;
  /** What failed to start, in the retry warning ("the job queue"). */
  what: string;
  /** How long a failing start is retried before its error is thrown. Default 60 s. */
  startTimeoutMs?: number;
  /** The pg-boss to start; after a failed start it cannot be started again, so `replace` makes a new one. */
  boss(): PgBoss;
  replace(): void;
  /** The queue it creates: one running job per singleton key, retried with exponential backoff. */
  queue: { name: string; retryLimit: number; retryDelayMs: number };
  /** After the queue, under the same lock: the caller's tables (`c` holds the lock). */
  setup(c: PoolClient): Promise<void>;
}

/**
 * Starts a pg-boss and what goes with it, idempotently across replicas: replicas starting
 * together take turns under one session advisory lock per schema, so the first creates
 * everything and the others find it made. A failed start (Postgres not up yet, restarting, a
 * lock timeout) is retried with backoff for `startTimeoutMs`, each failure logged; then the
 * error is thrown.
 */
export async function startBoss(o: StartOptions): Promise<void> {
  const deadline = Date.now() + (o.startTimeoutMs ?? 60_000);
  for (let attempt = 1; ; attempt++) {
    try {
      await startOnce(o);
      return;
    } catch (e) {
      const waitMs = Math.min(8_000, 500 * 2 ** (attempt - 1));
      if (Date.now() + waitMs > deadline) throw e;
      o.logger.warn({ err: describeError(e), attempt, retryInMs: waitMs }, `Starting ${o.what} failed; retrying`);
      await o.boss().stop({ graceful: false, wait: true, timeout: 1000 }).catch(() => undefined);
      o.replace();
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

async function startOnce(o: StartOptions): Promise<void> {
  const key = `${o.schema}.aegis-audit-start`;
  const c = await o.pool.connect();
  let locked = false;
  try {
    // A session lock (not a transaction's): pg-boss's start and createQueue run in their own transactions under it.
    await c.query('SELECT pg_advisory_lock(hashtext($1))', [key]);
    locked = true;
    const boss = o.boss();
    await boss.start();
    await boss.createQueue(o.queue.name, {
      name: o.queue.name,
      policy: 'singleton',
      retryLimit: o.queue.retryLimit,
      retryDelay: Math.max(1, Math.round(o.queue.retryDelayMs / 1000)),
      retryBackoff: true,
    });
    await o.setup(c);
  } finally {
    if (locked) await c.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => undefined);
    c.release();
  }
}
