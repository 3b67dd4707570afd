/**
 * The daemon's part when replicas share checks through the job queue (`queue:` in config).
 *
 * Who does what:
 * - every replica works: it takes check runs from the queue and stores their results as the
 *   shared latest (FleetQueue);
 * - the replica holding the leader lock schedules: on each tick of a check of a deployment it
 *   enqueues one run (a check still queued or running skips the tick), and a replica that just
 *   took the lock enqueues every check of every deployment, as a single daemon's first cycle
 *   does;
 * - the leader alone publishes: it reads the shared latest results of every deployment into
 *   the compliance metrics, each deployment's report and report files (and so the fleet's
 *   index). The others export each planned check with every status 0 (as a standby always
 *   has) and their own aegis_audit_queue_* series, so a failing check is one firing series,
 *   however many replicas Prometheus scrapes.
 *
 * A job runs with its deployment's own loaded config, sources and waivers, within that
 * deployment's share of the fleet's slots, exactly as the daemon's own runs do.
 */
import type { PlannedCheck } from '../core/runner';
import { newRunId } from '../core/runner';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';
import { buildReport } from '../core/report';
import type { CheckResult, Report } from '../core/types';
import type { QueueConfig } from '../config/schema';
import { FleetQueue, defaultReplicaName, type EnqueueItem, type FleetJob, type LatestResult } from '../fleet/queue';
import { PartsQueue } from '../fleet/parts';
import type { SharedWork } from '../core/define-check';
import { QueueWorkerMetrics } from '../outputs/queue-metrics';
import { runOutcome, type ComplianceMetrics, type PlannedCheckInfo } from '../outputs/metrics';
import type { LatestResults } from './latest';

/** One deployment of the config, as the queue's part schedules, runs and publishes it. */
export interface FleetDeployment {
  name: string;
  configDigest: string;
  planned: readonly PlannedCheck[];
  plan: readonly PlannedCheckInfo[];
  latest: LatestResults;
  /** Runs one check of the deployment (its own config, sources, waivers, share of the slots; parts of its work shared through `shared`); a run that cannot even start resolves to an error result. */
  runCheck: (check: string, shared: (checkId: string) => SharedWork | undefined) => Promise<CheckResult>;
  /** Runs one part of a check's work taken from the queue (throws when it fails: the part is retried). */
  runPart: (check: string, data: Record<string, unknown>) => Promise<unknown>;
}

export interface FleetPartsOptions {
  config: QueueConfig;
  /** Every deployment of the config: the queue carries the jobs of all of them. */
  deployments: readonly FleetDeployment[];
  metrics: ComplianceMetrics;
  logger: Logger;
  /** Told each time the leader published new results of a deployment. */
  onPublished: (report: Report) => Promise<void>;
}

export interface FleetParts {
  readonly queue: FleetQueue;
  readonly parts: PartsQueue;
  /** Leader only: enqueues a run of each of these checks of one deployment for this tick. */
  schedule(deployment: string, ids: readonly string[], tick: Date): Promise<void>;
  /** Leader only: enqueues a run of every planned check of every deployment (a replica that just took the lead). */
  scheduleAll(tick: Date): Promise<void>;
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

/** Per deployment: its plan, by check id, and what the leader has published of it. */
interface Member {
  d: FleetDeployment;
  timeouts: Map<string, number>;
  plannedIds: Set<string>;
  /** finishedAt (ms) of the last published result of each check. */
  seen: Map<string, number>;
}

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
  const self = new QueueWorkerMetrics(o.metrics, replica);
  /** Checks this replica is running now (aegis_audit_queue_jobs_running). */
  let runningChecks = 0;
  const members = new Map<string, Member>(
    o.deployments.map((d) => {
      const timeouts = new Map(d.planned.map((p) => [p.check.meta.id, p.timeoutMs]));
      return [d.name, { d, timeouts, plannedIds: new Set(timeouts.keys()), seen: new Map() }];
    }),
  );
  const names = [...members.keys()];

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
  const sharedOf =
    (deployment: string) =>
    (check: string): SharedWork => ({
      submit: (pass, list, expireInMs) => parts.submit({ deployment, check, pass }, list, expireInMs + o.config.expire_grace),
      results: async (pass) => new Map((await parts.parts(pass)).filter((p) => p.done).map((p) => [p.index, p.result])),
    });
  /** The member that plans a job's (deployment, check); throws for one this replica's config does not plan (a rollout in progress): the job is retried, by a replica that plans it. */
  const memberOf = (job: { deployment: string; check: string }): Member => {
    const part = members.get(job.deployment);
    if (!part) throw new Error(`deployment ${job.deployment} is not in this replica's config`);
    if (!part.plannedIds.has(job.check)) throw new Error(`check ${job.check} of deployment ${job.deployment} is not planned by this replica's config`);
    return part;
  };

  await queue.start();
  await parts.start();
  await parts.work(async (job) => memberOf(job).d.runPart(job.check, job.data));
  await queue.work(
    async (job: FleetJob) => {
      const part = memberOf(job);
      self.running(++runningChecks);
      try {
        return await part.d.runCheck(job.check, sharedOf(part.d.name));
      } finally {
        self.running(--runningChecks);
      }
    },
    (e) => self.ran(e.outcome, e.durationMs),
  );

  let leader = false;
  let publishing: Promise<void> | undefined;

  /** Publishes one deployment's fresh rows: its series, its merged report, its report files. */
  const publishDeployment = async (part: Member, rows: readonly LatestResult[]): Promise<void> => {
    const { d, seen } = part;
    const fresh = rows.filter((r) => part.plannedIds.has(r.check) && r.finishedAt.getTime() > (seen.get(r.check) ?? -1));
    if (fresh.length === 0 || !leader) return;
    const firstLoad = seen.size === 0;
    for (const r of fresh) seen.set(r.check, r.finishedAt.getTime());
    const results = fresh.map((r) => r.result);
    o.metrics.update(d.name, results);
    // Runs are counted as they are published; a leader's first load only shows what others ran.
    if (!firstLoad) for (const r of results) o.metrics.recordRun(d.name, runOutcome([r]));
    const starts = results.map((r) => Date.parse(r.startedAt)).filter(Number.isFinite);
    const report = buildReport({
      deployment: d.name,
      runId: newRunId(),
      configDigest: d.configDigest,
      startedAt: new Date(starts.length > 0 ? Math.min(...starts) : Date.now()),
      finishedAt: new Date(Math.max(...fresh.map((r) => r.finishedAt.getTime()))),
      results,
    });
    d.latest.record(report, part.plannedIds);
    await o.onPublished(report);
  };

  const publishOnce = async (): Promise<void> => {
    // One read for every deployment, from a little before the oldest of their newest published results.
    const newest = [...members.values()].filter((p) => p.plannedIds.size > 0).map((p) => (p.seen.size > 0 ? Math.max(...p.seen.values()) : undefined));
    const since = newest.some((n) => n === undefined) ? undefined : new Date(Math.min(...(newest as number[])) - PUBLISH_OVERLAP_MS);
    const rows = await queue.latest(names, since);
    const byDeployment = new Map<string, LatestResult[]>();
    for (const r of rows) {
      const list = byDeployment.get(r.deployment);
      if (list) list.push(r);
      else byDeployment.set(r.deployment, [r]);
    }
    for (const [name, list] of byDeployment) {
      const part = members.get(name);
      if (!part || !leader) continue;
      try {
        await publishDeployment(part, list);
      } catch (e) {
        o.logger.warn({ deployment: name, err: describeError(e) }, 'Publishing the shared results failed');
      }
    }
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

  /**
   * Enqueues go one at a time, the requests made meanwhile in one batch: the ticks of many
   * deployments' checks fall together, and two enqueues side by side would each see a check
   * not yet queued and queue it twice.
   */
  let batch: EnqueueItem[] = [];
  let enqueuing: Promise<void> = Promise.resolve();
  const enqueue = (items: EnqueueItem[]): Promise<void> => {
    if (items.length === 0) return Promise.resolve();
    const first = batch.length === 0;
    batch.push(...items);
    if (first) {
      enqueuing = enqueuing.then(async () => {
        const todo = batch;
        batch = [];
        try {
          const added = await queue.enqueue(todo);
          self.scheduled(added.length);
          if (added.length > 0) o.logger.debug({ runs: added.length, deployments: new Set(added.map((a) => a.deployment)).size }, 'Enqueued check runs');
        } catch (e) {
          o.logger.warn({ runs: todo.length, err: describeError(e) }, 'Enqueuing check runs failed');
        }
      });
    }
    return enqueuing;
  };
  const itemsOf = (part: Member, ids: readonly string[], tick: Date): EnqueueItem[] =>
    ids
      .filter((id) => part.plannedIds.has(id))
      .map((check) => ({ deployment: part.d.name, check, tick: tick.toISOString(), expireInMs: (part.timeouts.get(check) ?? 0) + o.config.expire_grace }));

  return {
    queue,
    parts,
    schedule(deployment, ids, tick) {
      const part = members.get(deployment);
      return part ? enqueue(itemsOf(part, ids, tick)) : Promise.resolve();
    },
    scheduleAll(tick) {
      return enqueue([...members.values()].flatMap((part) => itemsOf(part, [...part.plannedIds], tick)));
    },
    publish,
    leadership(isLeader) {
      if (isLeader === leader) return;
      leader = isLeader;
      if (isLeader) {
        for (const part of members.values()) part.seen.clear();
        void publish();
      } else {
        // Results were exported while leading; now the new leader exports them: every check back to 0.
        for (const { d } of members.values()) {
          o.metrics.removeDeployment(d.name);
          o.metrics.setPlan(d.name, d.plan);
          o.metrics.setLeader(d.name, false);
        }
      }
    },
    async close(deadlineMs) {
      clearInterval(timer);
      await publishing;
      await enqueuing;
      await Promise.all([queue.close(deadlineMs), parts.close(deadlineMs)]);
    },
  };
}
