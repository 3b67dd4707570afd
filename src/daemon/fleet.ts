/**
 * The daemon's part when replicas share checks through the job queue (`queue:` in config).
 *
 * Who does what:
 * - every replica works: it takes check runs from the queue and stores their results as the
 *   shared latest (FleetQueue);
 * - the replica holding the leader lock schedules: on each tick of a check it enqueues one
 *   run (a check still queued or running skips the tick), and a replica that just took the
 *   lock enqueues every check, as a single daemon's first cycle does;
 * - the leader alone publishes: it reads the shared latest results into the compliance
 *   metrics, /report and the report files. The others export each planned check with every
 *   status 0 (as a standby always has) and their own aegis_audit_queue_* series, so a failing
 *   check is one firing series, however many replicas Prometheus scrapes.
 */
import type { PlannedCheck } from '../core/runner';
import { newRunId } from '../core/runner';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';
import { buildReport } from '../core/report';
import type { CheckResult, Report } from '../core/types';
import type { QueueConfig } from '../config/schema';
import { FleetQueue, defaultReplicaName, type FleetJob } from '../fleet/queue';
import { PartsQueue } from '../fleet/parts';
import type { SharedWork } from '../core/define-check';
import { QueueWorkerMetrics } from '../outputs/queue-metrics';
import { runOutcome, type ComplianceMetrics, type PlannedCheckInfo } from '../outputs/metrics';
import type { LatestResults } from './latest';

export interface FleetPartsOptions {
  config: QueueConfig;
  deployment: string;
  configDigest: string;
  planned: readonly PlannedCheck[];
  plan: readonly PlannedCheckInfo[];
  metrics: ComplianceMetrics;
  latest: LatestResults;
  logger: Logger;
  /** Runs one check of the deployment (sharing parts of its work through `shared`); a run that cannot even start resolves to an error result. */
  runCheck: (check: string, shared: (checkId: string) => SharedWork | undefined) => Promise<CheckResult>;
  /** Runs one part of a check's work taken from the queue (throws when it fails: the part is retried). */
  runPart: (check: string, data: Record<string, unknown>) => Promise<unknown>;
  /** Told each time the leader published new results. */
  onPublished: (report: Report) => Promise<void>;
}

export interface FleetParts {
  readonly queue: FleetQueue;
  readonly parts: PartsQueue;
  /** Leader only: enqueues a run of each check for this tick. */
  schedule(ids: readonly string[], tick: Date): Promise<void>;
  /** Leader only: reads new shared results into metrics and reports. */
  publish(): Promise<void>;
  /** Leadership changed: a leader loads every shared result at once; a replica that lost it stops exporting results. */
  leadership(isLeader: boolean): void;
  close(deadlineMs: number): Promise<void>;
}

/** Rows that committed a moment after a later one still get read: each publish looks this far back and skips what it has seen. */
const PUBLISH_OVERLAP_MS = 10_000;
/** How long the run log (fleet_runs) keeps attempts. */
const RUN_LOG_KEEP_MS = 86_400_000;

export async function startFleetParts(o: FleetPartsOptions): Promise<FleetParts> {
  const replica = o.config.replica ?? defaultReplicaName();
  const queue = new FleetQueue({
    url: o.config.url,
    schema: o.config.schema,
    replica,
    concurrency: o.config.concurrency,
    retryLimit: o.config.retry_limit,
    retryDelayMs: o.config.retry_delay,
    maintenanceIntervalMs: o.config.maintenance_interval,
    logger: o.logger,
  });
  const self = new QueueWorkerMetrics(o.metrics.registry, replica, () => queue.activeCount());
  const timeouts = new Map(o.planned.map((p) => [p.check.meta.id, p.timeoutMs]));
  const plannedIds = new Set(timeouts.keys());
  const { deployment } = o;

  // Parts of long runs (receipt-chain's ranges): one at a time per replica — a part already verifies on every core.
  const parts = new PartsQueue({
    url: o.config.url,
    schema: o.config.schema,
    replica,
    concurrency: 1,
    retryLimit: o.config.retry_limit,
    retryDelayMs: o.config.retry_delay,
    maintenanceIntervalMs: o.config.maintenance_interval,
    logger: o.logger,
  });
  const shared = (check: string): SharedWork => ({
    submit: (pass, list, expireInMs) => parts.submit({ deployment, check, pass }, list, expireInMs + o.config.expire_grace),
    results: async (pass) => new Map((await parts.parts(pass)).filter((p) => p.done).map((p) => [p.index, p.result])),
  });

  await queue.start();
  await parts.start();
  await parts.work(async (job) => {
    if (job.deployment !== deployment) throw new Error(`deployment ${job.deployment} is not in this replica's config`);
    if (!plannedIds.has(job.check)) throw new Error(`check ${job.check} is not planned by this replica's config`);
    return o.runPart(job.check, job.data);
  });
  await queue.work(
    async (job: FleetJob) => {
      // A job of a deployment or check this replica's config does not plan (a rollout in
      // progress): it fails here and is retried, by a replica that plans it.
      if (job.deployment !== deployment) throw new Error(`deployment ${job.deployment} is not in this replica's config`);
      if (!plannedIds.has(job.check)) throw new Error(`check ${job.check} is not planned by this replica's config`);
      return o.runCheck(job.check, shared);
    },
    (e) => self.ran(e.outcome, e.durationMs),
  );

  /** finishedAt (ms) of the last published result of each check. */
  const seen = new Map<string, number>();
  let leader = false;
  let publishing: Promise<void> | undefined;

  const publishOnce = async (): Promise<void> => {
    const newest = Math.max(0, ...seen.values());
    const rows = await queue.latest([deployment], seen.size > 0 ? new Date(newest - PUBLISH_OVERLAP_MS) : undefined);
    const fresh = rows.filter((r) => plannedIds.has(r.check) && r.finishedAt.getTime() > (seen.get(r.check) ?? -1));
    if (fresh.length === 0 || !leader) return;
    const firstLoad = seen.size === 0;
    for (const r of fresh) seen.set(r.check, r.finishedAt.getTime());
    const results = fresh.map((r) => r.result);
    o.metrics.update(deployment, results);
    // Runs are counted as they are published; a leader's first load only shows what others ran.
    if (!firstLoad) for (const r of results) o.metrics.recordRun(deployment, runOutcome([r]));
    const starts = results.map((r) => Date.parse(r.startedAt)).filter(Number.isFinite);
    const report = buildReport({
      deployment,
      runId: newRunId(),
      configDigest: o.configDigest,
      startedAt: new Date(starts.length > 0 ? Math.min(...starts) : Date.now()),
      finishedAt: new Date(Math.max(...fresh.map((r) => r.finishedAt.getTime()))),
      results,
    });
    o.latest.record(report, plannedIds);
    await o.onPublished(report);
  };

  const publish = (): Promise<void> => {
    if (!leader) return Promise.resolve();
    publishing ??= publishOnce()
      .catch((e: unknown) => o.logger.warn({ err: describeError(e) }, 'Reading the shared results failed'))
      .finally(() => {
        publishing = undefined;
      });
    return publishing;
  };
  let lastPrune = 0;
  const timer = setInterval(() => {
    void publish();
    // The leader keeps the run log to a day.
    if (leader && Date.now() - lastPrune > 3_600_000) {
      lastPrune = Date.now();
      queue.prune(new Date(Date.now() - RUN_LOG_KEEP_MS)).catch((e: unknown) => o.logger.warn({ err: describeError(e) }, 'Pruning the run log failed'));
      parts.prune(new Date(Date.now() - RUN_LOG_KEEP_MS * 7)).catch((e: unknown) => o.logger.warn({ err: describeError(e) }, 'Pruning the parts of old passes failed'));
    }
  }, o.config.publish_interval);
  timer.unref();

  return {
    queue,
    parts,
    async schedule(ids, tick) {
      const items = ids
        .filter((id) => plannedIds.has(id))
        .map((check) => ({ deployment, check, tick: tick.toISOString(), expireInMs: (timeouts.get(check) ?? 0) + o.config.expire_grace }));
      const added = await queue.enqueue(items);
      self.scheduled(added.length);
      if (added.length > 0) o.logger.debug({ checks: added.map((a) => a.check), tick }, 'Enqueued check runs');
    },
    publish,
    leadership(isLeader) {
      if (isLeader === leader) return;
      leader = isLeader;
      if (isLeader) {
        seen.clear();
        void publish();
      } else {
        // Results were exported while leading; now the new leader exports them: every check back to 0.
        o.metrics.removeDeployment(deployment);
        o.metrics.setPlan(deployment, o.plan);
        o.metrics.setLeader(deployment, false);
      }
    },
    async close(deadlineMs) {
      clearInterval(timer);
      await publishing;
      await Promise.all([queue.close(deadlineMs), parts.close(deadlineMs)]);
    },
  };
}
