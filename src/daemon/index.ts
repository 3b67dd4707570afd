/**
 * Daemon mode: schedules each check of each deployment (node-cron, the check's schedule or
 * the deployment's config), keeps the latest results as metrics and a merged report per
 * deployment, serves them over HTTP, and with `leader_lock` runs checks only while it holds
 * the lock.
 *
 * A fleet (many deployments in one config) is one daemon: every (deployment, check) has its
 * own schedule, and at most `fleet.concurrency` checks run at once across the fleet, a fair
 * share each (FairLimiter), so a slow or broken deployment neither delays nor fails the others —
 * its own checks end `error`. `runChecks(deployment, checks)` is the one way a run happens,
 * for a schedule tick, the first cycle and a manual run alike.
 *
 * Staying up is the point: every scheduled run is wrapped, so a failing source or a
 * crashing check becomes an `error` result and a metric, never an unhandled rejection.
 */
import { resolve } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import type { LoadedConfig } from '../config/load';
import { fleetOfOne, loadFleetFile, type LoadedFleet } from '../config/fleet';
import { FairLimiter } from '../core/limiter';
import { indexEntry, type FleetIndexEntry } from '../outputs/fleet-index';
import { DEFAULT_LEADER_LOCK_KEY, type AuditConfig } from '../config/schema';
import { planChecks, runAudit, runPart, type AuditOptions } from '../app/audit';
import { loadSourceModules } from '../sources';
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
  /** A config file to load (fails fast on a bad one), an already loaded fleet, or one loaded deployment (a fleet of one). */
  configFile?: string;
  fleet?: LoadedFleet;
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
  /** Waivers and clock for every run (of every deployment, unless `auditOptionsOf` says otherwise). */
  auditOptions?: Pick<AuditOptions, 'waivers' | 'expiredWaivers' | 'now'>;
  /** A deployment's own waivers (a fleet's deployments each have theirs). */
  auditOptionsOf?: (loaded: LoadedConfig) => Pick<AuditOptions, 'waivers' | 'expiredWaivers' | 'now'>;
  /** How a run is executed; defaults to runAudit (tests and the sandbox may wrap it). */
  audit?: AuditFn;
  /** How long shutdown waits for running checks before closing anyway. Default 10 s. */
  shutdownDeadlineMs?: number;
  /** Random delay (ms) node-cron adds before each scheduled run, so replicas and checks spread out. Default 2000. */
  maxRandomDelayMs?: number;
  /** Install SIGTERM/SIGINT handlers that close the daemon then exit the process (the CLI sets this). */
  handleSignals?: boolean;
  /** Called after every run with its (partial) report and the deployment's merged one, e.g. to write report files. Errors are logged, not thrown. */
  onReport?: (report: Report, merged: Report) => void | Promise<void>;
  /** The HTML report /report serves when it exists (today's format). Default `<outputs.dir>/report.html`. */
  htmlReportPath?: string;
  /** A fleet's HTML report of a deployment, served at `/<deployment>/report`. Default `<outputs.dir>/<deployment>/report.html`. */
  htmlReportPathOf?: (deployment: string) => string;
}

export interface Daemon {
  /** `host:port` the HTTP server listens on. */
  readonly address: string;
  readonly metrics: ComplianceMetrics;
  /** What the HTTP server answers for this daemon. */
  readonly serverState: ServerState;
  /** Resolves once the first cycle of every deployment finished (or this replica found it is not the leader). */
  readonly ready: Promise<void>;
  /** The audited deployments, in config order. */
  deployments(): string[];
  /**
   * Runs checks of one deployment now (all its planned ones when omitted) exactly as a
   * scheduled tick does: leader lock, the fleet's slots, metrics, latest report, onReport.
   * Checks of it already running are not started twice. Never rejects; undefined when nothing ran.
   */
  runChecks(deployment: string, checks?: readonly string[]): Promise<Report | undefined>;
  /** Runs checks (all planned ones when omitted) of every deployment now; the first deployment's report (today's format: its only one). */
  runNow(only?: readonly string[]): Promise<Report | undefined>;
  isLeader(): boolean;
  /** The merged latest report of a deployment (default: the first; what /report.json serves for today's format). */
  report(deployment?: string): Report | undefined;
  /** One row per deployment: its state, failing checks and last run (the index page). */
  index(): FleetIndexEntry[];
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

/** One audited deployment inside the daemon. */
interface Unit {
  name: string;
  loaded: LoadedConfig;
  plannedIds: Set<string>;
  allIds: string[];
  latest: LatestResults;
  running: Set<string>;
  auditOptions: Pick<AuditOptions, 'waivers' | 'expiredWaivers' | 'now'> | undefined;
}

/**
 * Loads what the first cycle of `fleet` would load on first use — the sources' clients, the
 * checks' parsers, native libraries and worker pool (each check's `preload`) — so that it is
 * done before the server answers: a require is synchronous, and mid-cycle it held /metrics and
 * /healthz up for hundreds of milliseconds. Loading twice costs nothing. A module that fails to
 * load here is loaded (and its failure reported) by the check that uses it.
 */
export function preloadFleet(fleet: LoadedFleet, registry: Registry, logger: Logger): void {
  for (const loaded of fleet.deployments) {
    try {
      loadSourceModules(loaded.config);
    } catch (e) {
      logger.debug({ err: describeError(e) }, "Loading the sources' clients ahead failed; each loads when first used");
    }
    for (const [id, check] of registry) {
      if (loaded.config.checks[id]?.enabled === false || !check.preload) continue;
      try {
        check.preload?.();
      } catch (e) {
        logger.debug({ check: check.meta.id, err: describeError(e) }, 'Preloading failed; the check loads what it needs when it runs');
      }
    }
  }
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  if (!opts.fleet && !opts.loaded && !opts.configFile) throw new Error('startDaemon needs configFile, fleet or loaded');
  const knownSecrets = opts.knownSecrets ?? processSecrets;
  const logger = opts.logger ?? createLogger({ knownSecrets });
  const { registry } = opts;
  // Fail fast: a bad config or unknown check stops here, not at 3 a.m. on the first tick.
  const fleet = opts.fleet ?? (opts.loaded ? fleetOfOne(opts.loaded, registry) : await loadFleetFile(opts.configFile as string, { registry }));
  const settings = fleet.settings;

  const metrics = new ComplianceMetrics({
    reloads: opts.reloads,
    onInvalidMeasurement: (check, name, why) => logger.warn({ check, measurement: name, why }, 'Measurement not exported'),
  });
  const units = new Map<string, Unit>();
  for (const loaded of fleet.deployments) {
    const config = loaded.config;
    const planned = planChecks(loaded, registry);
    const sources = configuredSources(config);
    const plan: PlannedCheckInfo[] = planned.map(({ check }) => ({
      id: check.meta.id,
      severity: check.meta.severity,
      sources: check.meta.sources.flatMap((r) => (typeof r === 'string' ? [r] : [...r])).filter((s) => sources.includes(s)),
    }));
    metrics.setPlan(config.deployment, plan);
    const allIds = planned.map((p) => p.check.meta.id);
    units.set(config.deployment, {
      name: config.deployment,
      loaded,
      plannedIds: new Set(allIds),
      allIds,
      latest: new LatestResults(),
      running: new Set(),
      auditOptions: opts.auditOptionsOf?.(loaded) ?? opts.auditOptions,
    });
  }
  const names = [...units.keys()];
  const setLeaderMetric = (v: boolean) => {
    for (const n of names) metrics.setLeader(n, v);
  };
  /** A deployment's merged latest report, scrubbed of every secret known by now (a later run may have read one). */
  const latestReport = (name?: string): Report | undefined => {
    const unit = units.get(name ?? names[0]);
    const r = unit?.latest.report();
    return r && scrubReport(r, knownSecrets);
  };
  const fingerprinter = new Fingerprinter();
  // Worker threads of a long check (receipt-chain's signature pool) run at a lower priority than
  // this thread, so /metrics and /healthz answer at once while a first pass keeps every core busy.
  process.env.AEGIS_AUDIT_WORKER_NICE ??= '10';
  // A long pass is visible while it runs: rows processed and how far, in /metrics and the log.
  const progressLogs = new Map(names.map((n) => [n, progressReporter({ logger: names.length > 1 ? logger.child({ deployment: n }) : logger, intervalMs: 10_000 })]));
  const onProgressOf = (deployment: string) => (check: string, p: CheckProgress) => {
    metrics.progress(deployment, check, p);
    progressLogs.get(deployment)?.onProgress(check, p);
  };
  const audit: AuditFn = opts.audit ?? runAudit;
  const deadline = opts.shutdownDeadlineMs ?? 10_000;
  const limiter = new FairLimiter(settings.concurrency, settings.maxPerDeployment);

  // With a queue, replicas elect their scheduler on the queue's database unless leader_lock names another.
  const queueConfig = settings.queue;
  const lockUrl = settings.leaderLock?.url ?? queueConfig?.url;
  /** The queue's part (every deployment), when replicas share the checks through it. */
  let queueParts: FleetParts | undefined;
  const leader: LeaderElection = lockUrl
    ? new AdvisoryLockLeader({
        url: lockUrl,
        key: settings.leaderLock?.key ?? DEFAULT_LEADER_LOCK_KEY,
        logger,
        onChange: (v) => {
          setLeaderMetric(v);
          queueParts?.leadership(v);
        },
      })
    : new SoloLeader();
  setLeaderMetric(false);

  let closing = false;
  let firstCycleDone = false;
  let wasLeader = false;
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

  /** Runs `requested` checks of one deployment: the body of every run. */
  async function runUnit(unit: Unit, requested: readonly string[]): Promise<Report | undefined> {
    const ids = requested.filter((id) => unit.plannedIds.has(id) && !unit.running.has(id));
    if (ids.length === 0) return undefined;
    for (const id of ids) unit.running.add(id);
    const { name, loaded } = unit;
    const log = names.length > 1 ? logger.child({ deployment: name }) : logger;
    const started = new Date();
    const work = (async () => {
      let report: Report;
      let aborted = false;
      // Each check's series are exported as soon as it finishes: a tampered chain found in a
      // first cycle pages without waiting for the slowest check of that cycle.
      const published = new Set<string>();
      const onResult = (r: CheckResult) => {
        published.add(r.check);
        metrics.update(name, [r]);
      };
      try {
        report = await audit(loaded, registry, {
          ...unit.auditOptions,
          only: ids,
          logger: log,
          fingerprinter,
          knownSecrets,
          onResult,
          onProgress: onProgressOf(name),
          limit: (fn) => limiter.run(name, fn),
        });
      } catch (e) {
        const message = describeError(e);
        log.error({ checks: ids, err: message }, 'Run failed before checks could report');
        aborted = true;
        report = buildReport({
          deployment: name,
          runId: 'failed',
          configDigest: loaded.digest,
          startedAt: started,
          finishedAt: new Date(),
          results: crashed(ids, message, started),
        });
      }
      metrics.update(name, report.results.filter((r) => !published.has(r.check)));
      metrics.recordRun(name, aborted ? 'aborted' : runOutcome(report.results));
      unit.latest.record(report, unit.plannedIds);
      log.info({ checks: ids.length, ...report.summary }, 'Run finished');
      if (opts.onReport) {
        try {
          await opts.onReport(report, latestReport(name) ?? report);
        } catch (e) {
          log.error({ err: describeError(e) }, 'Writing reports failed');
        }
      }
      return report;
    })();
    inFlight.add(work);
    try {
      return await work;
    } finally {
      inFlight.delete(work);
      for (const id of ids) unit.running.delete(id);
    }
  }

  async function execute(unit: Unit, requested: readonly string[], tick: Date = new Date()): Promise<Report | undefined> {
    if (closing) return undefined;
    const isLeader = await leader.ensure();
    setLeaderMetric(isLeader);
    const took = isLeader && !wasLeader;
    wasLeader = isLeader;
    queueParts?.leadership(isLeader);
    if (!isLeader || closing) return undefined;
    if (queueParts) {
      // The leader only schedules: any replica (itself included) runs what it enqueues. One
      // that just took the lead enqueues every check of every deployment.
      await (took ? queueParts.scheduleAll(tick) : queueParts.schedule(unit.name, requested, tick));
      return undefined;
    }
    if (took) {
      // A replica that just took over runs everything, so its metrics are fresh at once.
      for (const other of units.values()) if (other !== unit) void guarded(runUnit(other, other.allIds));
      return runUnit(unit, unit.allIds);
    }
    return runUnit(unit, requested);
  }

  const guarded = (p: Promise<Report | undefined>): Promise<Report | undefined> =>
    p.catch((e: unknown) => {
      logger.error({ err: describeError(e) }, 'Scheduled run failed');
      return undefined;
    });

  /** The one entry point of scheduled and manual runs: never rejects. */
  const runChecks = (deployment: string, checks?: readonly string[], tick?: Date): Promise<Report | undefined> => {
    const unit = units.get(deployment);
    if (!unit) return Promise.resolve(undefined);
    return guarded(execute(unit, checks ?? unit.allIds, tick));
  };

  const index = (): FleetIndexEntry[] => names.map((n) => indexEntry(n, latestReport(n), fleet.single ? 'report' : `${encodeURIComponent(n)}/report`));
  const serverState: ServerState = {
    metrics,
    ready: () =>
      closing
        ? { ready: false, reason: 'shutting down' }
        : firstCycleDone
          ? { ready: true, reason: leader.isLeader() ? 'ready: leader, first cycle done' : 'ready: standing by (another replica holds the leader lock)' }
          : { ready: false, reason: 'starting: first cycle running' },
    report: () => latestReport(),
    htmlReportPath: opts.htmlReportPath ?? resolve(fleet.deployments[0].config.outputs.dir, 'report.html'),
    runbooks: runbookFiles([...registry.values()].map((c) => c.meta.runbook)),
    fleet: fleet.single
      ? undefined
      : {
          deployments: () => names,
          report: (n) => latestReport(n),
          htmlReportPath: (n) => {
            const unit = units.get(n);
            if (!unit) return undefined;
            return opts.htmlReportPathOf?.(n) ?? resolve(unit.loaded.config.outputs.dir, n, 'report.html');
          },
          index,
        },
  };
  preloadFleet(fleet, registry, logger);
  const ownServer = !opts.server;
  const server: RunningServer = opts.server ?? (await startServer(serverState, opts.listen ?? settings.server.listen, logger));

  const cronLogger = {
    info: (m: string) => logger.debug({ component: 'node-cron' }, m),
    warn: (m: string) => logger.warn({ component: 'node-cron' }, m),
    error: (m: string | Error) => logger.error({ component: 'node-cron', err: describeError(m) }, 'Scheduler error'),
    debug: (m: string | Error) => logger.debug({ component: 'node-cron' }, String(m)),
  };
  const tasks: ScheduledTask[] = [];
  for (const unit of units.values()) {
    for (const id of unit.allIds) {
      const check = registry.get(id);
      const schedule = unit.loaded.config.checks[id]?.schedule ?? check?.meta.schedule ?? '*/5 * * * *';
      tasks.push(
        cron.createTask(schedule, async (ctx) => void (await runChecks(unit.name, [id], ctx.date)), {
          name: fleet.single ? `aegis-audit:${id}` : `aegis-audit:${unit.name}:${id}`,
          noOverlap: true,
          maxRandomDelay: opts.maxRandomDelayMs ?? 2_000,
          logger: cronLogger,
        }),
      );
    }
  }

  if (queueConfig) {
    queueParts = await startFleetParts({
      config: queueConfig,
      deployments: [...units.values()].map((unit) => {
        const planned = planChecks(unit.loaded, registry);
        const sources = configuredSources(unit.loaded.config);
        const timeoutOf = new Map(planned.map((p) => [p.check.meta.id, p.timeoutMs]));
        const log = names.length > 1 ? logger.child({ deployment: unit.name }) : logger;
        return {
          name: unit.name,
          configDigest: unit.loaded.digest,
          planned,
          plan: planned.map(({ check }) => ({
            id: check.meta.id,
            severity: check.meta.severity,
            sources: check.meta.sources.flatMap((r) => (typeof r === 'string' ? [r] : [...r])).filter((x) => sources.includes(x)),
          })),
          latest: unit.latest,
          // As runUnit runs it: the deployment's own config, sources and waivers, within its share of the slots.
          runCheck: async (id, shared) => {
            const started = new Date();
            try {
              const report = await audit(unit.loaded, registry, { ...unit.auditOptions, only: [id], logger: log, fingerprinter, knownSecrets, shared, limit: (fn) => limiter.run(unit.name, fn) });
              return report.results.find((r) => r.check === id) ?? crashed([id], 'the check reported no result', started)[0];
            } catch (e) {
              log.error({ check: id, err: describeError(e), timeoutMs: timeoutOf.get(id) }, 'Run failed before the check could report');
              return crashed([id], describeError(e), started)[0];
            }
          },
          runPart: (id, data) => runPart(unit.loaded, registry, id, data, { logger: log, knownSecrets }),
        };
      }),
      metrics,
      logger,
      onPublished: async (report) => {
        if (!opts.onReport) return;
        try {
          await opts.onReport(report, latestReport(report.deployment) ?? report);
        } catch (e) {
          logger.error({ deployment: report.deployment, err: describeError(e) }, 'Writing reports failed');
        }
      },
    });
  }

  // With a queue, a standby does not wait for the next tick of some check (perhaps an hour
  // away) to take the lead: it tries every publish_interval, so the schedules and the exported
  // results (and the alerts on them) move within seconds of the leader's death.
  const leadTimer = queueConfig
    ? setInterval(() => {
        if (!closing && !leader.isLeader()) void runChecks(names[0], []);
      }, queueConfig.publish_interval)
    : undefined;
  leadTimer?.unref();

  const ready = Promise.all(names.map((n) => runChecks(n))).then(() => {
    firstCycleDone = true;
  });
  for (const t of tasks) await t.start();
  logger.info(
    { address: server.address, deployments: names.length, checks: [...units.values()].reduce((n, u) => n + u.allIds.length, 0), leaderLock: Boolean(settings.leaderLock) },
    'Daemon started',
  );

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      clearInterval(leadTimer);
      for (const t of tasks) await Promise.resolve(t.destroy()).catch(() => undefined);
      const waited = await Promise.race([Promise.allSettled([...inFlight]).then(() => true), delay(deadline).then(() => false)]);
      if (!waited) {
        const running = [...units.values()].flatMap((u) => [...u.running].map((id) => (names.length > 1 ? `${u.name}/${id}` : id)));
        logger.warn({ deadlineMs: deadline, running }, 'Shutdown deadline passed with checks still running');
      }
      // Checks this replica took from the queue get the same deadline; those still running are handed back for another replica.
      await queueParts?.close(deadline);
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
    deployments: () => [...names],
    runChecks,
    runNow: async (only) => (await Promise.all(names.map((n) => runChecks(n, only))))[0],
    isLeader: () => leader.isLeader(),
    report: latestReport,
    index,
    close,
  };
}
