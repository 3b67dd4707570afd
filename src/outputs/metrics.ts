/**
 * Prometheus metrics of the auditor, on a dedicated prom-client Registry (never the global one).
 *
 * Results are cached here by `update()` after each run; a scrape only renders the cache
 * (the `collect` callbacks read maps, they never run a check). Every check of the plan is
 * exported from `setPlan()` on, before its first run, so no series is missing; checks that
 * leave the plan disappear from every per-check metric.
 *
 * Conventions (reference/prometheus.md): prefix `aegis_compliance_`, base units in names,
 * `_total` only on counters, a `check_status` state set, and no label named `severity`
 * (alert rules own that label) — a check's own severity is `check_severity`.
 */
import { Counter, Gauge, Registry, type RegistryContentType } from 'prom-client';
import type { CheckResult, Severity, Status } from '../core/types';
import { STATUSES } from '../core/types';
import { TOOL_VERSION } from '../core/report';

export const METRIC_PREFIX = 'aegis_compliance_';

/** What the metrics need to know about a planned check. */
export interface PlannedCheckInfo {
  id: string;
  severity: Severity;
  /** Sources the check reads (alternatives flattened); used to tell `source_up` from a clean run. */
  sources: readonly string[];
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
}

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
  'last_cycle_timestamp_seconds', 'config_reloads',
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

export class ComplianceMetrics {
  readonly registry: Registry;
  private readonly checks = new Map<string, CheckState>();
  private readonly sourceUp = new Map<string, number>();
  private readonly measurementGauges = new Map<string, Gauge<'check'>>();
  private readonly sourceErrors: Counter<'source' | 'reason'>;
  private readonly leaderGauge: Gauge;
  private readonly lastCycle: Gauge;
  private readonly onInvalid?: ComplianceMetricsOptions['onInvalidMeasurement'];

  constructor(opts: ComplianceMetricsOptions = {}) {
    this.registry = new Registry();
    this.onInvalid = opts.onInvalidMeasurement;
    const registers = [this.registry];
    const checks = this.checks;
    const p = METRIC_PREFIX;

    new Gauge({
      name: `${p}check_status`,
      help: 'Status of each check as a state set: 1 for its current status, 0 for the others; all 0 before its first run.',
      labelNames: ['check', 'check_severity', 'status'] as const,
      registers,
      collect() {
        this.reset();
        for (const [check, s] of checks) {
          for (const status of STATUSES) this.set({ check, check_severity: s.severity, status }, s.status === status ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: `${p}findings`,
      help: 'Findings of the latest run of each check that fail it (not waived, not info).',
      labelNames: ['check', 'check_severity'] as const,
      registers,
      collect() {
        this.reset();
        for (const [check, s] of checks) this.set({ check, check_severity: s.severity }, s.findings);
      },
    });
    const perCheck = (name: string, help: string, value: (s: CheckState) => number) =>
      new Gauge({
        name: `${p}${name}`,
        help,
        labelNames: ['check'] as const,
        registers,
        collect() {
          this.reset();
          for (const [check, s] of checks) this.set({ check }, value(s));
        },
      });
    perCheck('check_duration_seconds', 'Duration of the latest run of each check.', (s) => s.durationSeconds);
    perCheck('check_last_run_timestamp_seconds', 'Unix time the latest run of each check finished; 0 before its first run.', (s) => s.lastRun);
    perCheck(
      'check_last_success_timestamp_seconds',
      'Unix time each check was last evaluated (pass or fail, not error or skipped); 0 if never.',
      (s) => s.lastSuccess,
    );
    const sourceUp = this.sourceUp;
    new Gauge({
      name: `${p}source_up`,
      help: 'Whether each source answered in the latest run that used it (1) or failed (0).',
      labelNames: ['source'] as const,
      registers,
      collect() {
        this.reset();
        for (const [source, v] of sourceUp) this.set({ source }, v);
      },
    });
    this.sourceErrors = new Counter({
      name: `${p}source_errors_total`,
      help: 'Source failures seen by checks, by source and reason.',
      labelNames: ['source', 'reason'] as const,
      registers,
    });
    new Gauge({
      name: `${p}build_info`,
      help: 'Version of aegis-audit; always 1.',
      labelNames: ['version'] as const,
      registers,
    }).set({ version: opts.version ?? TOOL_VERSION }, 1);
    this.leaderGauge = new Gauge({
      name: `${p}leader`,
      help: 'Whether this replica holds the leader lock and runs checks (1) or stands by (0).',
      registers,
    });
    this.lastCycle = new Gauge({
      name: `${p}last_cycle_timestamp_seconds`,
      help: 'Unix time this replica last finished a run of checks; 0 before the first.',
      registers,
    });
    const reloads = opts.reloads ?? (() => ({ success: 0, failure: 0 }));
    new Counter({
      name: `${p}config_reloads_total`,
      help: 'Config reloads (SIGHUP) by outcome: success (the new config runs) or failure (the old one kept running).',
      labelNames: ['outcome'] as const,
      registers,
      collect() {
        const n = reloads();
        this.reset();
        this.inc({ outcome: 'success' }, n.success);
        this.inc({ outcome: 'failure' }, n.failure);
      },
    });
    this.leaderGauge.set(0);
    this.lastCycle.set(0);
  }

  /**
   * The checks the daemon runs. New checks appear with every status at 0; checks no longer
   * planned are dropped from every per-check metric. State of checks that stay is kept.
   */
  setPlan(plan: readonly PlannedCheckInfo[]): void {
    const ids = new Set(plan.map((c) => c.id));
    for (const id of [...this.checks.keys()]) if (!ids.has(id)) this.checks.delete(id);
    for (const c of plan) {
      const s = this.checks.get(c.id);
      if (s) s.severity = c.severity;
      else {
        this.checks.set(c.id, {
          severity: c.severity,
          findings: 0,
          durationSeconds: 0,
          lastRun: 0,
          lastSuccess: 0,
          measurements: new Map(),
        });
      }
    }
    this.plan = new Map(plan.map((c) => [c.id, c]));
  }

  private plan = new Map<string, PlannedCheckInfo>();

  /** Records the results of a run (all checks or some). Results of unplanned checks are ignored. */
  update(results: readonly CheckResult[], now: Date = new Date()): void {
    const seenUp = new Map<string, number>();
    for (const r of results) {
      const s = this.checks.get(r.check);
      if (!s) continue;
      const started = Date.parse(r.startedAt);
      const finished = (Number.isFinite(started) ? started + r.durationMs : now.getTime()) / 1000;
      s.status = r.status;
      s.findings = r.findings.filter((f) => !f.waived && f.severity !== 'info').length;
      s.durationSeconds = r.durationMs / 1000;
      s.lastRun = finished;
      if (r.status === 'pass' || r.status === 'fail') s.lastSuccess = finished;

      s.measurements = new Map();
      for (const m of r.measurements ?? []) {
        const why = validMeasurementName(m.name);
        if (why || !Number.isFinite(m.value)) {
          this.onInvalid?.(r.check, m.name, why ?? 'value is not a finite number');
          continue;
        }
        this.measurementGauge(m.name, m.help);
        s.measurements.set(m.name, m.value);
      }

      // A source is down if any check of this run failed on it; up if a check that reads it was evaluated.
      for (const e of r.sourceErrors ?? []) {
        seenUp.set(e.source, 0);
        this.sourceErrors.inc({ source: e.source, reason: e.reason || 'error' });
      }
      if (r.status === 'pass' || r.status === 'fail') {
        for (const src of this.plan.get(r.check)?.sources ?? []) if (!seenUp.has(src)) seenUp.set(src, 1);
      }
    }
    for (const [src, v] of seenUp) this.sourceUp.set(src, v);
    this.lastCycle.set(now.getTime() / 1000);
  }

  setLeader(isLeader: boolean): void {
    this.leaderGauge.set(isLeader ? 1 : 0);
  }

  /** Only sources the configuration names can have a `source_up` series. */
  retainSources(configured: readonly string[]): void {
    const keep = new Set(configured);
    for (const s of [...this.sourceUp.keys()]) if (!keep.has(s)) this.sourceUp.delete(s);
  }

  private measurementGauge(name: string, help: string): Gauge<'check'> {
    let g = this.measurementGauges.get(name);
    if (!g) {
      const checks = this.checks;
      g = new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help: help.trim() || `Figure measured by a check: ${name}.`,
        labelNames: ['check'] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [check, s] of checks) {
            const v = s.measurements.get(name);
            if (v !== undefined) this.set({ check }, v);
          }
        },
      });
      this.measurementGauges.set(name, g);
    }
    return g;
  }

  private renderChain: Promise<unknown> = Promise.resolve();

  /**
   * The exposition, in Prometheus text format or OpenMetrics. Renders are serialised: prom-client
   * keeps the format on the registry (read between awaits) and, for OpenMetrics, strips `_total`
   * from counter names in place — both are restored before the next render starts.
   */
  render(openMetrics = false): Promise<{ contentType: string; body: string }> {
    const run = async () => {
      if (!openMetrics) return { contentType: this.registry.contentType, body: await this.registry.metrics() };
      const reg = this.registry as unknown as Registry<RegistryContentType>;
      reg.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      try {
        return { contentType: reg.contentType, body: await reg.metrics() };
      } finally {
        reg.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
        (this.sourceErrors as unknown as { name: string }).name = `${METRIC_PREFIX}source_errors_total`;
      }
    };
    const next = this.renderChain.then(run, run);
    this.renderChain = next.catch(() => undefined);
    return next;
  }
}
