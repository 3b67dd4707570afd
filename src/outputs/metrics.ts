/**
 * Prometheus metrics of the auditor, on a dedicated prom-client Registry (never the global one).
 *
 * Results are cached here by `update()` after each run; a scrape only renders the cache
 * (the `collect` callbacks read maps, they never run a check). Every check of a plan is
 * exported from `setPlan()` on, before its first run, so no series is missing; checks that
 * leave the plan disappear from every per-check metric.
 *
 * Every `aegis_compliance_*` series carries the audited `deployment` (from config), given per
 * call: one registry can hold several deployments side by side, and their series never mix.
 * The process's own figures (CPU, memory, heap, event-loop lag: prom-client's default
 * metrics, `process_*` and `nodejs_*`) are rendered after ours, from one process-wide
 * dedicated registry, so a daemon that is replaced on reload adds no second set of observers.
 *
 * Every figure is plain data here, counters included, and every change goes through one of
 * the methods below: `mirror()` hands the state and then each change, in order, to a copy of
 * this class elsewhere (the daemon's HTTP thread), which renders exactly what this one would.
 *
 * Conventions (reference/prometheus.md): prefix `aegis_compliance_`, base units in names,
 * `_total` only on counters, a `check_status` state set, and no label named `severity`
 * (alert rules own that label) — a check's own severity is `check_severity`.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, type RegistryContentType } from 'prom-client';
import type { CheckResult, Report, Severity, Status } from '../core/types';
import { STATUSES } from '../core/types';
import { TOOL_VERSION } from '../core/report';
import { registerReplicaMetrics } from './queue-metrics';

export const METRIC_PREFIX = 'aegis_compliance_';

/** What the metrics need to know about a planned check. */
export interface PlannedCheckInfo {
  id: string;
  severity: Severity;
  /** Sources the check reads (alternatives flattened); used to tell `source_up` from a clean run. */
  sources: readonly string[];
}

/**
 * How one run ended, for `runs_total{outcome}`: `pass` every evaluated check passed; `fail`
 * findings and no error; `error` at least one check could not be evaluated; `aborted` the run
 * failed before its checks could report (e.g. its sources could not be opened).
 */
export const RUN_OUTCOMES = ['pass', 'fail', 'error', 'aborted'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/** The outcome of a run from its results (`aborted` is the daemon's to say). */
export function runOutcome(results: readonly Pick<CheckResult, 'status'>[]): Exclude<RunOutcome, 'aborted'> {
  if (results.some((r) => r.status === 'error')) return 'error';
  if (results.some((r) => r.status === 'fail')) return 'fail';
  return 'pass';
}

interface CheckState {
  severity: Severity;
  /** undefined until the first run: every status series is 0 (unknown). */
  status?: Status;
  findings: number;
  durationSeconds: number;
  lastRun: number;
  lastSuccess: number;
  /** Measured figures of the latest run, name → value. */
  measurements: Map<string, number>;
  /** The progress a running (or the latest) run reported: its start, rows counted so far, the fraction done. */
  progress?: { startedMs: number; done: number; ratio: number };
  /** `check_rows_processed_total`: rows counted over every run; undefined until a run reported progress (no series). */
  rows?: number;
}

/** Everything exported for one audited deployment. */
interface DeploymentState {
  checks: Map<string, CheckState>;
  plan: Map<string, PlannedCheckInfo>;
  sourceUp: Map<string, number>;
  leader: number;
  lastCycle: number;
  /** `source_errors_total` by (source, reason). */
  sourceErrors: Map<string, { source: string; reason: string; n: number }>;
  /** `runs_total` by outcome. */
  runs: Record<RunOutcome, number>;
}

/** One result as the metrics keep it: what update() reads of a CheckResult. */
export interface ResultFigures {
  check: string;
  status: Status;
  startedAt: string;
  durationMs: number;
  /** Findings that fail the check (not waived, not info). */
  failing: number;
  measurements: readonly { name: string; value: number; help: string }[];
  sourceErrors: readonly { source: string; reason: string }[];
}

/** Everything a ComplianceMetrics exports, as plain data (structured-clonable). */
export interface MetricsSnapshot {
  version: string;
  deployments: Map<string, DeploymentState>;
  measurementHelp: Map<string, string>;
  reloads: ReloadCounts;
  replicas: Map<string, ReplicaState>;
}

/** A replica's own work when replicas share checks through the queue (src/outputs/queue-metrics.ts). */
export interface ReplicaState {
  jobs: Map<string, number>;
  seconds: number;
  enqueued: number;
  running: number;
}

/** One change, as mirror() hands it on: a method of ComplianceMetrics and its arguments. */
export type MetricsOp =
  | { op: 'progress'; args: Parameters<ComplianceMetrics['progress']> }
  | { op: 'setPlan'; args: Parameters<ComplianceMetrics['setPlan']> }
  | { op: 'removeDeployment'; args: Parameters<ComplianceMetrics['removeDeployment']> }
  | { op: 'applyFigures'; args: Parameters<ComplianceMetrics['applyFigures']> }
  | { op: 'recordRun'; args: Parameters<ComplianceMetrics['recordRun']> }
  | { op: 'setLeader'; args: Parameters<ComplianceMetrics['setLeader']> }
  | { op: 'retainSources'; args: Parameters<ComplianceMetrics['retainSources']> }
  | { op: 'setReloads'; args: [ReloadCounts] }
  | { op: 'replica'; args: Parameters<ComplianceMetrics['replica']> }
  | { op: 'replicaRan'; args: Parameters<ComplianceMetrics['replicaRan']> }
  | { op: 'replicaScheduled'; args: Parameters<ComplianceMetrics['replicaScheduled']> }
  | { op: 'replicaRunning'; args: Parameters<ComplianceMetrics['replicaRunning']> };

/** A measured figure's name: snake_case, not a counter/histogram suffix, not one of ours. */
const MEASUREMENT_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const RESERVED_SUFFIXES = ['_total', '_bucket', '_count', '_sum', '_created', '_info'];

export function validMeasurementName(name: string): string | undefined {
  if (!MEASUREMENT_NAME.test(name)) return 'must be snake_case ([a-z0-9_], starting with a letter)';
  if (RESERVED_SUFFIXES.some((s) => name.endsWith(s))) return `must not end in ${RESERVED_SUFFIXES.join(', ')} (measurements are gauges)`;
  if (CORE_NAMES.has(name)) return 'collides with a built-in metric';
  return undefined;
}

const CORE_NAMES = new Set([
  'check_status', 'findings', 'check_duration_seconds', 'check_last_run_timestamp_seconds',
  'check_last_success_timestamp_seconds', 'source_up', 'source_errors', 'build_info', 'leader',
  'last_cycle_timestamp_seconds', 'runs', 'config_reloads', 'check_rows_processed', 'check_progress_ratio',
]);

/** Config reloads of the process so far, by outcome: they outlive the daemon that counts them. */
export interface ReloadCounts {
  success: number;
  failure: number;
}

export interface ComplianceMetricsOptions {
  version?: string;
  /** Read at every scrape for `config_reloads_total` (default: none yet). */
  reloads?: () => ReloadCounts;
  /** Told when a check reports a measurement we cannot export (bad name); never throws from update. */
  onInvalidMeasurement?: (check: string, name: string, why: string) => void;
}

/**
 * prom-client's default metrics that describe the whole process (CPU, memory, descriptors,
 * start time, version): any thread reads the same values. The others (heap, GC, event loop,
 * handles) describe the thread that collects them.
 */
const PROCESS_WIDE = /^process_|^nodejs_version_info$/;

let processRegistries: { wide: Registry; thread: Registry } | undefined;
/** prom-client's default metrics, once per thread, in registries of their own (not the global one): process-wide and this thread's. */
export function processMetrics(): { wide: Registry; thread: Registry } {
  if (!processRegistries) {
    const wide = new Registry();
    collectDefaultMetrics({ register: wide });
    // Gauges whose name ends in _total break the naming rules (promtool check metrics flags
    // them); each is the sum of a series by type that stays (nodejs_active_handles{type}, ...).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) wide.removeSingleMetric(name);
    const thread = new Registry();
    for (const m of wide.getMetricsAsArray()) {
      const name = (m as unknown as { name: string }).name;
      if (PROCESS_WIDE.test(name)) continue;
      wide.removeSingleMetric(name);
      thread.registerMetric(m as never);
    }
    processRegistries = { wide, thread };
  }
  return processRegistries;
}

/** Renders take turns process-wide: prom-client keeps the format on a registry and renames counters in place for OpenMetrics. */
let renderChain: Promise<unknown> = Promise.resolve();

export async function renderRegistry(reg: Registry, openMetrics: boolean): Promise<string> {
  if (!openMetrics) return reg.metrics();
  const r = reg as unknown as Registry<RegistryContentType>;
  const counters = r.getMetricsAsArray().filter((m) => (m as unknown as { type: string }).type === 'counter') as unknown as { name: string }[];
  const names = counters.map((c) => c.name);
  r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  try {
    return await r.metrics();
  } finally {
    r.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
    counters.forEach((c, i) => (c.name = names[i]));
  }
}

export class ComplianceMetrics {
  readonly registry: Registry;
  /**
   * The series a running check's progress changes (rows processed, progress ratio), apart
   * from the others: they change many times a second during a long pass, and a daemon's
   * HTTP thread renders them again alone, the rest only after a change of theirs.
   */
  readonly progressRegistry = new Registry();
  private readonly deployments = new Map<string, DeploymentState>();
  private readonly measurementHelp = new Map<string, string>();
  private readonly measurementGauges = new Map<string, Gauge<'deployment' | 'check'>>();
  private readonly onInvalid?: ComplianceMetricsOptions['onInvalidMeasurement'];
  private readonly reloadsOf?: () => ReloadCounts;
  /** Set by setReloads (a mirror): the process's reloads as last told. */
  private reloadsSet: ReloadCounts = { success: 0, failure: 0 };
  private readonly version: string;
  private sinks: ((op: MetricsOp) => void)[] = [];
  private readonly replicas = new Map<string, ReplicaState>();
  private replicaMetricsRegistered = false;

  constructor(opts: ComplianceMetricsOptions = {}) {
    this.registry = new Registry();
    this.onInvalid = opts.onInvalidMeasurement;
    this.reloadsOf = opts.reloads;
    this.version = opts.version ?? TOOL_VERSION;
    const registers = [this.registry];
    const deployments = this.deployments;
    const p = METRIC_PREFIX;
    /** Every (deployment, check, state) the gauges export. */
    function* eachCheck(): Generator<[string, string, CheckState]> {
      for (const [deployment, d] of deployments) for (const [check, s] of d.checks) yield [deployment, check, s];
    }

    new Gauge({
      name: `${p}check_status`,
      help: 'Status of each check as a state set: 1 for its current status, 0 for the others; all 0 before its first run.',
      labelNames: ['deployment', 'check', 'check_severity', 'status'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, check, s] of eachCheck()) {
          for (const status of STATUSES) this.set({ deployment, check, check_severity: s.severity, status }, s.status === status ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: `${p}findings`,
      help: 'Findings of the latest run of each check that fail it (not waived, not info).',
      labelNames: ['deployment', 'check', 'check_severity'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, check, s] of eachCheck()) this.set({ deployment, check, check_severity: s.severity }, s.findings);
      },
    });
    const perCheck = (name: string, help: string, value: (s: CheckState) => number) =>
      new Gauge({
        name: `${p}${name}`,
        help,
        labelNames: ['deployment', 'check'] as const,
        registers,
        collect() {
          this.reset();
          for (const [deployment, check, s] of eachCheck()) this.set({ deployment, check }, value(s));
        },
      });
    perCheck('check_duration_seconds', 'Duration of the latest run of each check.', (s) => s.durationSeconds);
    perCheck('check_last_run_timestamp_seconds', 'Unix time the latest run of each check finished; 0 before its first run.', (s) => s.lastRun);
    perCheck(
      'check_last_success_timestamp_seconds',
      'Unix time each check was last evaluated (pass or fail, not error or skipped); 0 if never.',
      (s) => s.lastSuccess,
    );
    new Gauge({
      name: `${p}source_up`,
      help: 'Whether each source answered in the latest run that used it (1) or failed (0).',
      labelNames: ['deployment', 'source'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, d] of deployments) for (const [source, v] of d.sourceUp) this.set({ deployment, source }, v);
      },
    });
    new Counter({
      name: `${p}source_errors_total`,
      help: 'Source failures seen by checks, by source and reason.',
      labelNames: ['deployment', 'source', 'reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, d] of deployments) for (const e of d.sourceErrors.values()) this.inc({ deployment, source: e.source, reason: e.reason }, e.n);
      },
    });
    new Counter({
      name: `${p}runs_total`,
      help: 'Runs of checks by outcome: pass (every evaluated check passed), fail (findings, no error), error (a check could not be evaluated), aborted (the run failed before its checks reported).',
      labelNames: ['deployment', 'outcome'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, d] of deployments) for (const outcome of RUN_OUTCOMES) this.inc({ deployment, outcome }, d.runs[outcome]);
      },
    });
    const version = this.version;
    new Gauge({
      name: `${p}build_info`,
      help: 'Version of aegis-audit, one series per audited deployment; always 1.',
      labelNames: ['deployment', 'version'] as const,
      registers,
      collect() {
        this.reset();
        for (const deployment of deployments.keys()) this.set({ deployment, version }, 1);
      },
    });
    new Gauge({
      name: `${p}leader`,
      help: 'Whether this replica holds the leader lock and runs checks (1) or stands by (0).',
      labelNames: ['deployment'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, d] of deployments) this.set({ deployment }, d.leader);
      },
    });
    new Gauge({
      name: `${p}last_cycle_timestamp_seconds`,
      help: 'Unix time this replica last finished a run of checks; 0 before the first.',
      labelNames: ['deployment'] as const,
      registers,
      collect() {
        this.reset();
        for (const [deployment, d] of deployments) this.set({ deployment }, d.lastCycle);
      },
    });
    const reloads = () => this.reloads();
    new Counter({
      name: `${p}config_reloads_total`,
      help: 'Config reloads (SIGHUP) by outcome: success (the new config runs) or failure (the old one kept running).',
      labelNames: ['deployment', 'outcome'] as const,
      registers,
      // The process's reloads, under each deployment it audits (every series names one).
      collect() {
        const n = reloads();
        this.reset();
        for (const deployment of deployments.keys()) {
          this.inc({ deployment, outcome: 'success' }, n.success);
          this.inc({ deployment, outcome: 'failure' }, n.failure);
        }
      },
    });
    new Counter({
      name: `${p}check_rows_processed_total`,
      help: "Rows (audit rows, log events) processed by each check, counted as the work advances: rate() of it is a long pass's speed.",
      labelNames: ['deployment', 'check'] as const,
      registers: [this.progressRegistry],
      collect() {
        this.reset();
        for (const [deployment, check, s] of eachCheck()) if (s.rows !== undefined) this.inc({ deployment, check }, s.rows);
      },
    });
    new Gauge({
      name: `${p}check_progress_ratio`,
      help: 'How far the latest run of each check that reports its progress has come (0–1, 1 when it ended); with check_rows_processed_total, the ETA of a long pass.',
      labelNames: ['deployment', 'check'] as const,
      registers: [this.progressRegistry],
      collect() {
        this.reset();
        for (const [deployment, check, s] of eachCheck()) if (s.progress) this.set({ deployment, check }, s.progress.ratio);
      },
    });
  }

  private reloads(): ReloadCounts {
    return this.reloadsOf?.() ?? this.reloadsSet;
  }

  private emit(op: MetricsOp): void {
    for (const sink of this.sinks) sink(op);
  }

  /**
   * Hands the state as it is now, then every change in order, to `sink` (until the returned
   * function is called). A ComplianceMetrics.fromSnapshot of the first, given each change with
   * apply(), renders what this one renders — the same series and values.
   */
  mirror(sink: (op: MetricsOp) => void): { snapshot: MetricsSnapshot; stop: () => void } {
    this.sinks.push(sink);
    return {
      snapshot: { version: this.version, deployments: this.deployments, measurementHelp: this.measurementHelp, reloads: { ...this.reloads() }, replicas: this.replicas },
      stop: () => {
        this.sinks = this.sinks.filter((s) => s !== sink);
      },
    };
  }

  /** A copy of a mirrored ComplianceMetrics (the snapshot is taken over, not copied). */
  static fromSnapshot(snapshot: MetricsSnapshot): ComplianceMetrics {
    const m = new ComplianceMetrics({ version: snapshot.version });
    for (const [name, help] of snapshot.measurementHelp) m.measurementGauge(name, help);
    for (const [name, d] of snapshot.deployments) m.deployments.set(name, d);
    m.reloadsSet = snapshot.reloads;
    for (const [name, r] of snapshot.replicas) {
      m.replica(name);
      m.replicas.set(name, r);
    }
    return m;
  }

  /** One change a mirrored ComplianceMetrics made. */
  apply(op: MetricsOp): void {
    switch (op.op) {
      case 'progress':
        return this.progress(...op.args);
      case 'setPlan':
        return this.setPlan(...op.args);
      case 'removeDeployment':
        return this.removeDeployment(...op.args);
      case 'applyFigures':
        return this.applyFigures(...op.args);
      case 'recordRun':
        return this.recordRun(...op.args);
      case 'setLeader':
        return this.setLeader(...op.args);
      case 'retainSources':
        return this.retainSources(...op.args);
      case 'setReloads':
        this.reloadsSet = { ...op.args[0] };
        return;
      case 'replica':
        return this.replica(...op.args);
      case 'replicaRan':
        return this.replicaRan(...op.args);
      case 'replicaScheduled':
        return this.replicaScheduled(...op.args);
      case 'replicaRunning':
        return this.replicaRunning(...op.args);
    }
  }

  /** The process's reload counts changed (the `reloads` option reads them): tells mirrors. */
  reloadsChanged(): void {
    if (this.sinks.length > 0) this.emit({ op: 'setReloads', args: [{ ...this.reloads() }] });
  }

  /** A running check's progress (the runner's onProgress): counts the rows since the last call. */
  progress(deployment: string, check: string, p: { done: number; total?: number; startedMs: number; finished?: boolean }): void {
    const s = this.deployments.get(deployment)?.checks.get(check);
    if (!s || !Number.isFinite(p.done)) return;
    this.emit({ op: 'progress', args: [deployment, check, { done: p.done, total: p.total, startedMs: p.startedMs, finished: p.finished }] });
    if (!s.progress || s.progress.startedMs !== p.startedMs) s.progress = { startedMs: p.startedMs, done: 0, ratio: 0 };
    const g = s.progress;
    if (p.done > g.done) {
      s.rows = (s.rows ?? 0) + p.done - g.done;
      g.done = p.done;
    }
    g.ratio = p.finished ? 1 : p.total && p.total > 0 ? Math.min(1, p.done / p.total) : g.ratio;
  }

  /** The deployments exported, in the order they were planned. */
  deploymentNames(): string[] {
    return [...this.deployments.keys()];
  }

  private state(deployment: string): DeploymentState {
    let d = this.deployments.get(deployment);
    if (!d) {
      d = { checks: new Map(), plan: new Map(), sourceUp: new Map(), leader: 0, lastCycle: 0, sourceErrors: new Map(), runs: { pass: 0, fail: 0, error: 0, aborted: 0 } };
      this.deployments.set(deployment, d);
    }
    return d;
  }

  /**
   * The checks the daemon runs for a deployment. New checks appear with every status at 0;
   * checks no longer planned are dropped from every per-check metric. State of checks that stay is kept.
   */
  setPlan(deployment: string, plan: readonly PlannedCheckInfo[]): void {
    this.emit({ op: 'setPlan', args: [deployment, plan] });
    const d = this.state(deployment);
    const ids = new Set(plan.map((c) => c.id));
    for (const id of [...d.checks.keys()]) if (!ids.has(id)) d.checks.delete(id);
    for (const c of plan) {
      const s = d.checks.get(c.id);
      if (s) s.severity = c.severity;
      else {
        d.checks.set(c.id, {
          severity: c.severity,
          findings: 0,
          durationSeconds: 0,
          lastRun: 0,
          lastSuccess: 0,
          measurements: new Map(),
        });
      }
    }
    d.plan = new Map(plan.map((c) => [c.id, { id: c.id, severity: c.severity, sources: [...c.sources] }]));
  }

  /** Stops exporting a deployment: every series labelled with it goes, counters included. */
  removeDeployment(deployment: string): void {
    if (!this.deployments.has(deployment)) return;
    this.emit({ op: 'removeDeployment', args: [deployment] });
    this.deployments.delete(deployment);
  }

  /** Records the results of a run of a deployment's checks (all or some). Results of unplanned checks are ignored. */
  update(deployment: string, results: readonly CheckResult[], now: Date = new Date()): void {
    if (!this.deployments.has(deployment)) return;
    const figures: ResultFigures[] = results.map((r) => ({
      check: r.check,
      status: r.status,
      startedAt: r.startedAt,
      durationMs: r.durationMs,
      failing: r.findings.filter((f) => !f.waived && f.severity !== 'info').length,
      measurements: (r.measurements ?? []).map((m) => ({ name: m.name, value: m.value, help: m.help })),
      sourceErrors: (r.sourceErrors ?? []).map((e) => ({ source: e.source, reason: e.reason })),
    }));
    this.applyFigures(deployment, figures, now.getTime());
  }

  /** update() with what it reads of the results, and the time as a number. */
  applyFigures(deployment: string, results: readonly ResultFigures[], nowMs: number): void {
    const d = this.deployments.get(deployment);
    if (!d) return;
    this.emit({ op: 'applyFigures', args: [deployment, results, nowMs] });
    const seenUp = new Map<string, number>();
    for (const r of results) {
      const s = d.checks.get(r.check);
      if (!s) continue;
      const started = Date.parse(r.startedAt);
      const finished = (Number.isFinite(started) ? started + r.durationMs : nowMs) / 1000;
      s.status = r.status;
      s.findings = r.failing;
      s.durationSeconds = r.durationMs / 1000;
      s.lastRun = finished;
      if (r.status === 'pass' || r.status === 'fail') s.lastSuccess = finished;

      s.measurements = new Map();
      for (const m of r.measurements) {
        const why = validMeasurementName(m.name);
        if (why || !Number.isFinite(m.value)) {
          this.onInvalid?.(r.check, m.name, why ?? 'value is not a finite number');
          continue;
        }
        this.measurementGauge(m.name, m.help);
        s.measurements.set(m.name, m.value);
      }

      // A source is down if any check of this run failed on it; up if a check that reads it was evaluated.
      for (const e of r.sourceErrors) {
        seenUp.set(e.source, 0);
        const l = { source: e.source, reason: e.reason || 'error' };
        const key = `${l.source}\0${l.reason}`;
        const counted = d.sourceErrors.get(key);
        if (counted) counted.n++;
        else d.sourceErrors.set(key, { ...l, n: 1 });
      }
      if (r.status === 'pass' || r.status === 'fail') {
        for (const src of d.plan.get(r.check)?.sources ?? []) if (!seenUp.has(src)) seenUp.set(src, 1);
      }
    }
    for (const [src, v] of seenUp) d.sourceUp.set(src, v);
    d.lastCycle = nowMs / 1000;
  }

  /** Counts a finished run of a deployment's checks (see RUN_OUTCOMES). */
  recordRun(deployment: string, outcome: RunOutcome): void {
    const d = this.deployments.get(deployment);
    if (!d) return;
    this.emit({ op: 'recordRun', args: [deployment, outcome] });
    d.runs[outcome]++;
  }

  /** Records a run's report: its results and its outcome. */
  recordReport(deployment: string, report: Pick<Report, 'results'>, aborted = false, now: Date = new Date()): void {
    this.update(deployment, report.results, now);
    this.recordRun(deployment, aborted ? 'aborted' : runOutcome(report.results));
  }

  setLeader(deployment: string, isLeader: boolean): void {
    const known = this.deployments.has(deployment);
    const d = this.state(deployment);
    const v = isLeader ? 1 : 0;
    // Told on every run: mirrors hear of changes only.
    if (!known || d.leader !== v) this.emit({ op: 'setLeader', args: [deployment, isLeader] });
    d.leader = v;
  }

  /** Only sources the configuration names can have a `source_up` series. */
  retainSources(deployment: string, configured: readonly string[]): void {
    const d = this.deployments.get(deployment);
    if (!d) return;
    this.emit({ op: 'retainSources', args: [deployment, configured] });
    const keep = new Set(configured);
    for (const s of [...d.sourceUp.keys()]) if (!keep.has(s)) d.sourceUp.delete(s);
  }

  /** Exports a replica's own queue series (QueueWorkerMetrics), from now on. */
  replica(replica: string): void {
    this.emit({ op: 'replica', args: [replica] });
    if (!this.replicas.has(replica)) this.replicas.set(replica, { jobs: new Map(), seconds: 0, enqueued: 0, running: 0 });
    if (!this.replicaMetricsRegistered) {
      this.replicaMetricsRegistered = true;
      registerReplicaMetrics(this.registry, this.replicas);
    }
  }

  /** A check run a replica took from the queue ended. */
  replicaRan(replica: string, outcome: string, durationMs: number): void {
    const r = this.replicas.get(replica);
    if (!r) return;
    this.emit({ op: 'replicaRan', args: [replica, outcome, durationMs] });
    r.jobs.set(outcome, (r.jobs.get(outcome) ?? 0) + 1);
    r.seconds += durationMs / 1000;
  }

  replicaScheduled(replica: string, n: number): void {
    const r = this.replicas.get(replica);
    if (!r) return;
    this.emit({ op: 'replicaScheduled', args: [replica, n] });
    r.enqueued += n;
  }

  replicaRunning(replica: string, n: number): void {
    const r = this.replicas.get(replica);
    if (!r || r.running === n) return;
    this.emit({ op: 'replicaRunning', args: [replica, n] });
    r.running = n;
  }

  private measurementGauge(name: string, help: string): Gauge<'deployment' | 'check'> {
    let g = this.measurementGauges.get(name);
    if (!g) {
      const deployments = this.deployments;
      this.measurementHelp.set(name, help);
      g = new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help: help.trim() || `Figure measured by a check: ${name}.`,
        labelNames: ['deployment', 'check'] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [deployment, d] of deployments) {
            for (const [check, s] of d.checks) {
              const v = s.measurements.get(name);
              if (v !== undefined) this.set({ deployment, check }, v);
            }
          }
        },
      });
      this.measurementGauges.set(name, g);
    }
    return g;
  }

  /**
   * The exposition, in Prometheus text format or OpenMetrics: our series, then this thread's
   * (heap, GC, event loop, handles), then the process's. Renders are serialised
   * process-wide: prom-client keeps the format on a registry (read between awaits) and, for
   * OpenMetrics, strips `_total` from counter names in place — both are restored before the
   * next render starts.
   */
  render(openMetrics = false): Promise<{ contentType: string; body: string }> {
    return serialised(async () => {
      const ours = await renderRegistry(this.registry, openMetrics);
      const progress = await renderRegistry(this.progressRegistry, openMetrics);
      const thread = await this.renderThreadSectionNow(openMetrics);
      const wide = await renderRegistry(processMetrics().wide, openMetrics);
      return joinExposition([ours, progress, thread, wide], openMetrics, this.registry.contentType);
    });
  }

  /** What only this thread can render: its heap, GC, event-loop and handles figures (a daemon's HTTP thread asks for them at each scrape). */
  renderThreadSection(openMetrics = false): Promise<string> {
    return serialised(() => this.renderThreadSectionNow(openMetrics));
  }

  private async renderThreadSectionNow(openMetrics: boolean): Promise<string> {
    const own = await renderRegistry(processMetrics().thread, openMetrics);
    return joinExposition([own], openMetrics, '').body;
  }
}

/**
 * A thread's own series (renderThreadSection's Prometheus text) as OpenMetrics, without
 * rendering them again (prom-client's event-loop figures reset at each render). They are
 * gauges and histograms only, which the two formats write alike but for the blank line
 * between families; a test holds this to prom-client's own OpenMetrics rendering.
 */
export function threadSectionAsOpenMetrics(text: string): string {
  return text.replace(/\n{2,}/g, '\n');
}

/** Runs `fn` after every render started before it (see render()). */
export function serialised<T>(fn: () => Promise<T>): Promise<T> {
  const next = renderChain.then(fn, fn);
  renderChain = next.catch(() => undefined);
  return next;
}

/** Expositions rendered apart, as one: OpenMetrics' `# EOF` once, at the end; empty parts left out. */
export function joinExposition(parts: readonly string[], openMetrics: boolean, textContentType: string): { contentType: string; body: string } {
  const EOF = '# EOF\n';
  const strip = (s: string) => (openMetrics && s.endsWith(EOF) ? s.slice(0, -EOF.length) : s);
  const bodies = parts.map(strip).filter((s) => s.trim() !== '');
  if (!openMetrics) return { contentType: textContentType || Registry.PROMETHEUS_CONTENT_TYPE, body: bodies.map((b) => (b.endsWith('\n') ? b : `${b}\n`)).join('\n') };
  return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: `${bodies.join('')}${EOF}` };
}
