/**
 * Daemon mode: schedules each check (node-cron, the check's schedule or the config's),
 * keeps the latest results as metrics and a merged report, serves them over HTTP, and with
 * `leader_lock` runs checks only while it holds the lock.
 *
 * Staying up is the point: every scheduled run is wrapped, so a failing source or a
 * crashing check becomes an `error` result and a metric, never an unhandled rejection.
 */
import { resolve } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { loadConfigFile, type LoadedConfig } from '../config/load';
import { DEFAULT_LEADER_LOCK_KEY, type AuditConfig } from '../config/schema';
import { planChecks, runAudit, type AuditOptions } from '../app/audit';
import { progressReporter } from '../app/progress';
import type { CheckProgress } from '../core/runner';
import type { Registry } from '../core/registry';
import { createLogger, type Logger } from '../core/logger';
import { describeError } from '../core/redact';
import { Fingerprinter, processSecrets, type KnownSecrets } from '../core/secret';
import { ErrorCodes } from '../core/errors';
import { buildReport, scrubReport } from '../core/report';
import type { CheckResult, Report } from '../core/types';
import { ComplianceMetrics, runOutcome, type PlannedCheckInfo, type ReloadCounts } from '../outputs/metrics';
import { runbookFiles } from '../outputs/render';
import { AdvisoryLockLeader, SoloLeader, type LeaderElection } from './leader';
import { startFleetParts, type FleetParts } from './fleet';
import { LatestResults } from './latest';
import { startServer, type RunningServer, type ServerState } from './server';

export type AuditFn = (loaded: LoadedConfig, registry: Registry, opts: AuditOptions) => Promise<Report>;

export interface DaemonOptions {
  /** Either a config file to load (fails fast on a bad one) or an already loaded config. */
  configFile?: string;
  loaded?: LoadedConfig;
  registry: Registry;
  /** `host:port`, overriding `server.listen` (tests: `127.0.0.1:0`). */
  listen?: string;
  /**
   * A listener to answer on instead of opening one (a reload reuses the running one). The
   * daemon does not take it over — the caller does, with `server.setState(daemon.serverState)`
   * — and does not close it.
   */
  server?: RunningServer;
  /** Config reloads of the process so far, exported as `config_reloads_total`. */
  reloads?: () => ReloadCounts;
  logger?: Logger;
  /** What sources register secrets with and every answer is scrubbed with (default: the process's, as the logger's). */
  knownSecrets?: KnownSecrets;
  /** Waivers and clock for every run. */
  auditOptions?: Pick<AuditOptions, 'waivers' | 'expiredWaivers' | 'now'>;
  /** How a run is executed; defaults to runAudit (tests and the sandbox may wrap it). */
  audit?: AuditFn;
  /** How long shutdown waits for running checks before closing anyway. Default 10 s. */
  shutdownDeadlineMs?: number;
  /** Random delay (ms) node-cron adds before each scheduled run, so replicas and checks spread out. Default 2000. */
  maxRandomDelayMs?: number;
  /** Install SIGTERM/SIGINT handlers that close the daemon then exit the process (the CLI sets this). */
  handleSignals?: boolean;
  /** Called after every run with its (partial) report, e.g. to write report files. Errors are logged, not thrown. */
  onReport?: (report: Report, merged: Report) => void | Promise<void>;
  /** The HTML report /report serves when it exists. Default `<outputs.dir>/report.html`. */
  htmlReportPath?: string;
}

export interface Daemon {
  /** `host:port` the HTTP server listens on. */
  readonly address: string;
  readonly metrics: ComplianceMetrics;
  /** What the HTTP server answers for this daemon. */
  readonly serverState: ServerState;
  /** Resolves once the first cycle finished (or this replica found it is not the leader). */
  readonly ready: Promise<void>;
  /** Runs checks now (all planned ones when omitted) exactly as a scheduled tick does. Never rejects. */
  runNow(only?: readonly string[]): Promise<Report | undefined>;
  isLeader(): boolean;
  /** The merged latest report (what /report.json serves). */
  report(): Report | undefined;
  /** Stops schedules, waits for running checks up to the deadline, releases the lock, closes the server. */
  close(): Promise<void>;
}

/** Sources the config makes available, by the names checks and `source_up` use. */
export function configuredSources(config: AuditConfig): string[] {
  const s = config.sources;
  const out: string[] = [];
  if (s.postgres) out.push('postgres');
  if (s.logs) out.push('logs');
  if (s.secrets) out.push('secrets');
  if (s.secrets?.ssm) out.push('ssm');
  if (s.secrets?.vault) out.push('vault');
  if (s.prometheus) out.push('prometheus');
  return out;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  if (!opts.loaded && !opts.configFile) throw new Error('startDaemon needs configFile or loaded');
  const knownSecrets = opts.knownSecrets ?? processSecrets;
  const logger = opts.logger ?? createLogger({ knownSecrets });
  const { registry } = opts;
  // Fail fast: a bad config or unknown check stops here, not at 3 a.m. on the first tick.
  const loaded = opts.loaded ?? (await loadConfigFile(opts.configFile as string, { registry }));
  const config = loaded.config;
  const planned = planChecks(loaded, registry);
  const plannedIds = new Set(planned.map((p) => p.check.meta.id));
  const allIds = [...plannedIds];
  const sources = configuredSources(config);
  const plan: PlannedCheckInfo[] = planned.map(({ check }) => ({
    id: check.meta.id,
    severity: check.meta.severity,
    sources: check.meta.sources.flatMap((r) => (typeof r === 'string' ? [r] : [...r])).filter((s) => sources.includes(s)),
  }));

  const metrics = new ComplianceMetrics({
    reloads: opts.reloads,
    onInvalidMeasurement: (check, name, why) => logger.warn({ check, measurement: name, why }, 'Measurement not exported'),
  });
  const deployment = config.deployment;
  metrics.setPlan(deployment, plan);
  const latest = new LatestResults();
  /** The merged latest report, scrubbed of every secret known by now (a later run may have read one). */
  const latestReport = (): Report | undefined => {
    const r = latest.report();
    return r && scrubReport(r, knownSecrets);
  };
  const fingerprinter = new Fingerprinter();
  // Worker threads of a long check (receipt-chain's signature pool) run at a lower priority than
  // this thread, so /metrics and /healthz answer at once while a first pass keeps every core busy.
  process.env.AEGIS_AUDIT_WORKER_NICE ??= '10';
  // A long pass is visible while it runs: rows processed and how far, in /metrics and the log.
  const progressLog = progressReporter({ logger, intervalMs: 10_000 });
  const onProgress = (check: string, p: CheckProgress) => {
    metrics.progress(deployment, check, p);
    progressLog.onProgress(check, p);
  };
  const audit: AuditFn = opts.audit ?? runAudit;
  const deadline = opts.shutdownDeadlineMs ?? 10_000;

  // With a queue, replicas elect their scheduler on the queue's database unless leader_lock names another.
  const lockUrl = config.leader_lock?.url ?? config.queue?.url;
  let fleet: FleetParts | undefined;
  const leader: LeaderElection = lockUrl
    ? new AdvisoryLockLeader({
        url: lockUrl,
        key: config.leader_lock?.key ?? DEFAULT_LEADER_LOCK_KEY,
        logger,
        onChange: (v) => {
          metrics.setLeader(deployment, v);
          fleet?.leadership(v);
        },
      })
    : new SoloLeader();
  metrics.setLeader(deployment, false);

  let closing = false;
  let firstCycleDone = false;
  let wasLeader = false;
  const running = new Set<string>();
  const inFlight = new Set<Promise<unknown>>();

  /** Results standing in for checks whose run could not even start (e.g. sources failed to open). */
  const crashed = (ids: readonly string[], message: string, started: Date): CheckResult[] =>
    ids.map((id) => {
      const meta = registry.get(id)?.meta;
      return {
        check: id,
        title: meta?.title ?? id,
        severity: meta?.severity ?? 'info',
        status: 'error',
        durationMs: Date.now() - started.getTime(),
        error: `run failed: ${message}`,
        errorCode: ErrorCodes.CHECK_FAILED,
        findings: [],
        startedAt: started.toISOString(),
      };
    });

  async function execute(requested: readonly string[], tick: Date = new Date()): Promise<Report | undefined> {
    if (closing) return undefined;
    const isLeader = await leader.ensure();
    metrics.setLeader(deployment, isLeader);
    const took = isLeader && !wasLeader;
    wasLeader = isLeader;
    fleet?.leadership(isLeader);
    if (!isLeader || closing) return undefined;
    if (fleet) {
      // The leader only schedules: any replica (itself included) runs what it enqueues.
      await fleet.schedule(took ? allIds : requested, tick);
      return undefined;
    }
    // A replica that just took over runs everything, so its metrics are fresh at once.
    const ids = (took ? allIds : requested).filter((id) => plannedIds.has(id) && !running.has(id));
    if (ids.length === 0) return undefined;
    for (const id of ids) running.add(id);
    const started = new Date();
    const work = (async () => {
      let report: Report;
      let aborted = false;
      // Each check's series are exported as soon as it finishes: a tampered chain found in a
      // first cycle pages without waiting for the slowest check of that cycle.
      const published = new Set<string>();
      const onResult = (r: CheckResult) => {
        published.add(r.check);
        metrics.update(deployment, [r]);
      };
      try {
        report = await audit(loaded, registry, { ...opts.auditOptions, only: ids, logger, fingerprinter, knownSecrets, onResult, onProgress });
      } catch (e) {
        const message = describeError(e);
        logger.error({ checks: ids, err: message }, 'Run failed before checks could report');
        aborted = true;
        report = buildReport({
          deployment: config.deployment,
          runId: 'failed',
          configDigest: loaded.digest,
          startedAt: started,
          finishedAt: new Date(),
          results: crashed(ids, message, started),
        });
      }
      metrics.update(deployment, report.results.filter((r) => !published.has(r.check)));
      metrics.recordRun(deployment, aborted ? 'aborted' : runOutcome(report.results));
      latest.record(report, plannedIds);
      logger.info({ checks: ids.length, ...report.summary }, 'Run finished');
      if (opts.onReport) {
        try {
          await opts.onReport(report, latestReport() ?? report);
        } catch (e) {
          logger.error({ err: describeError(e) }, 'Writing reports failed');
        }
      }
      return report;
    })();
    inFlight.add(work);
    try {
      return await work;
    } finally {
      inFlight.delete(work);
      for (const id of ids) running.delete(id);
    }
  }

  /** The one entry point of scheduled and manual runs: never rejects. */
  const safeExecute = (ids: readonly string[], tick?: Date): Promise<Report | undefined> =>
    execute(ids, tick).catch((e: unknown) => {
      logger.error({ err: describeError(e) }, 'Scheduled run failed');
      return undefined;
    });

  const serverState: ServerState = {
    metrics,
    ready: () =>
      closing
        ? { ready: false, reason: 'shutting down' }
        : firstCycleDone
          ? { ready: true, reason: leader.isLeader() ? 'ready: leader, first cycle done' : 'ready: standing by (another replica holds the leader lock)' }
          : { ready: false, reason: 'starting: first cycle running' },
    report: latestReport,
    htmlReportPath: opts.htmlReportPath ?? resolve(config.outputs.dir, 'report.html'),
    runbooks: runbookFiles([...registry.values()].map((c) => c.meta.runbook)),
  };
  const ownServer = !opts.server;
  const server: RunningServer = opts.server ?? (await startServer(serverState, opts.listen ?? config.server.listen, logger));

  const cronLogger = {
    info: (m: string) => logger.debug({ component: 'node-cron' }, m),
    warn: (m: string) => logger.warn({ component: 'node-cron' }, m),
    error: (m: string | Error) => logger.error({ component: 'node-cron', err: describeError(m) }, 'Scheduler error'),
    debug: (m: string | Error) => logger.debug({ component: 'node-cron' }, String(m)),
  };
  const tasks: ScheduledTask[] = planned.map(({ check }) => {
    const id = check.meta.id;
    const schedule = config.checks[id]?.schedule ?? check.meta.schedule;
    return cron.createTask(schedule, async (ctx) => void (await safeExecute([id], ctx.date)), {
      name: `aegis-audit:${id}`,
      noOverlap: true,
      maxRandomDelay: opts.maxRandomDelayMs ?? 2_000,
      logger: cronLogger,
    });
  });

  if (config.queue) {
    const timeoutOf = new Map(planned.map((p) => [p.check.meta.id, p.timeoutMs]));
    fleet = await startFleetParts({
      config: config.queue,
      deployment,
      configDigest: loaded.digest,
      planned,
      plan,
      metrics,
      latest,
      logger,
      runCheck: async (id) => {
        const started = new Date();
        try {
          const report = await audit(loaded, registry, { ...opts.auditOptions, only: [id], logger, fingerprinter, knownSecrets });
          return report.results.find((r) => r.check === id) ?? crashed([id], 'the check reported no result', started)[0];
        } catch (e) {
          logger.error({ check: id, err: describeError(e), timeoutMs: timeoutOf.get(id) }, 'Run failed before the check could report');
          return crashed([id], describeError(e), started)[0];
        }
      },
      onPublished: async (report) => {
        if (!opts.onReport) return;
        try {
          await opts.onReport(report, latestReport() ?? report);
        } catch (e) {
          logger.error({ err: describeError(e) }, 'Writing reports failed');
        }
      },
    });
  }

  const ready = safeExecute(allIds).then(() => {
    firstCycleDone = true;
  });
  for (const t of tasks) await t.start();
  logger.info({ address: server.address, checks: allIds.length, leaderLock: Boolean(config.leader_lock) }, 'Daemon started');

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      for (const t of tasks) await Promise.resolve(t.destroy()).catch(() => undefined);
      const waited = await Promise.race([Promise.allSettled([...inFlight]).then(() => true), delay(deadline).then(() => false)]);
      if (!waited) logger.warn({ deadlineMs: deadline, running: [...running] }, 'Shutdown deadline passed with checks still running');
      // Checks this replica took from the queue get the same deadline; those still running are handed back for another replica.
      await fleet?.close(deadline);
      await leader.close();
      if (ownServer) await server.close(Math.min(deadline, 2_000));
      removeSignalHandlers();
      logger.info('Daemon stopped');
    })();
    return closed;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'Shutting down');
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const onRejection = (reason: unknown) => logger.error({ err: describeError(reason) }, 'Unhandled rejection (kept running)');
  function removeSignalHandlers() {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('unhandledRejection', onRejection);
  }
  if (opts.handleSignals) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    process.on('unhandledRejection', onRejection);
  }

  return {
    address: server.address,
    metrics,
    serverState,
    ready,
    runNow: (only) => safeExecute(only ?? allIds),
    isLeader: () => leader.isLeader(),
    report: latestReport,
    close,
  };
}
