/**
 * Prometheus alert rules for the checks a registry holds, their promtool unit tests, and the
 * same rules as a prometheus-operator PrometheusRule. alerts/generate.mjs writes the shipped
 * files from the built-in registry; a deployment that overrides schedules regenerates them
 * from its config (`node alerts/generate.mjs --config audit.yaml`).
 *
 * Timing comes from each check's schedule (reference/prometheus.md, "for: at least two runs"):
 * - a check that `pagesOnFirstFailure` (integrity and leak checks: a tampered row, a secret at
 *   rest) pages on the first failing run: `for: 0s`;
 * - every other check pages when the next run fails too: `for` is one schedule interval plus
 *   a quarter of it (at least 2 min) for run time, scrape and evaluation, so a failure that the
 *   next run clears never pages, and a 5-minute check pages after 7 minutes, not 30.
 * A critical check that is skipped (its source is not configured) or ends in error for that
 * long and at least 30 minutes pages as not evaluated; a check that has not run at all for two
 * intervals plus its run time (at least an hour) while the daemon has been up that long is stale.
 *
 * Every rule keys on `deployment` (every series carries it), never on `job`: the rules work
 * whatever the scrape job is called (`aegis-audit`, `kubernetes-pods`, a ServiceMonitor's).
 *
 * One failing check is one alert, whichever replica exports it. Of several replicas only the
 * leader exports results, and the leader changes (a replica dies, a pod is rescheduled); one
 * daemon may also be scraped by several jobs. So the alerts on a check's result aggregate the
 * exporter away — `max by (deployment, check, check_severity)`: no `instance`, `job`, nor the
 * target labels service discovery adds (`pod`, `namespace`, `node`, `service`, ...) — and
 * keep firing for `keep_firing_for` (default 5 min) after their series are gone, which
 * bridges the gap between the old leader's last scrape and the new leader's first (the
 * standby takes the lock within `queue.publish_interval`, then one scrape and one rule
 * evaluation). The price: a check that really recovers resolves that much later. Joins of
 * one target's own series use `ignoring(...)` the labels that differ between them, so they
 * hold whatever target labels a scrape adds.
 */
import cron from 'node-cron';
import { stringify } from 'yaml';
import type { Severity } from '../core/types';

/** What the rules need to know about a check. */
export interface AlertCheck {
  id: string;
  severity: Severity;
  /** The cron schedule the daemon runs it on. */
  schedule: string;
  /** Integrity and leak checks: one failing run is the incident. */
  pagesOnFirstFailure?: boolean;
  /** The longest a run may take (ms), e.g. the check's timeout. */
  timeoutMs?: number;
}

/** A check's alert inputs from its metadata; a deployment's schedule and timeout override the defaults. */
export function alertCheck(
  meta: { id: string; severity: Severity; schedule: string; pagesOnFirstFailure?: boolean; timeout?: number },
  override: { schedule?: string; timeoutMs?: number } = {},
): AlertCheck {
  return {
    id: meta.id,
    severity: meta.severity,
    schedule: override.schedule ?? meta.schedule,
    pagesOnFirstFailure: meta.pagesOnFirstFailure === true,
    timeoutMs: override.timeoutMs ?? meta.timeout,
  };
}

export interface AlertRulesOptions {
  /**
   * Where the repository's docs are published, e.g. `https://git.example.com/org/aegis-audit/blob/v0.1.0`.
   * Empty (the default): runbooks are linked by their path in the repository and the package,
   * `docs/runbooks/<check>.md`.
   */
  runbookBase?: string;
  /**
   * Seconds an alert on a check's result keeps firing after its series are gone (Prometheus
   * `keep_firing_for`, 2.42 and later): longer than a change of leader takes to reach the
   * rules. Default 5 min.
   */
  keepFiringFor?: number;
}

/**
 * The default `keep_firing_for`: a standby takes the lock within `queue.publish_interval`
 * (5 s by default) of the leader's session ending, then exports at its next scrape, which
 * the rules see at their next evaluation: with scrape and evaluation intervals of up to a
 * minute each, two minutes; five leave room for a slow Postgres or a missed scrape.
 */
export const KEEP_FIRING_FOR = 5 * 60;

export interface CheckTiming {
  /** Longest gap between two runs of the schedule, seconds. */
  intervalSeconds: number;
  /** `for` of the failing alert, seconds (0: pages on the first failing run). */
  failingFor: number;
  /** `for` of the not-evaluated (critical) or erroring alert, seconds. */
  notEvaluatedFor: number;
  /** Seconds without a finished run after which the check is stale. */
  staleAfter: number;
}

const MIN = 60;
const ceilMinutes = (s: number) => Math.ceil(s / MIN) * MIN;

/** The longest gap between consecutive runs of a cron schedule, over its next 200 runs. */
export function longestInterval(schedule: string): number {
  const task = cron.createTask(schedule, () => undefined);
  try {
    const runs = task.getNextRuns(200).map((d) => d.getTime());
    let max = 0;
    for (let i = 1; i < runs.length; i++) max = Math.max(max, (runs[i] - runs[i - 1]) / 1000);
    return max;
  } finally {
    void task.destroy();
  }
}

export function checkTiming(c: AlertCheck): CheckTiming {
  const interval = longestInterval(c.schedule);
  const twoRuns = ceilMinutes(interval + Math.max(2 * MIN, interval / 4));
  const runTime = Math.max((c.timeoutMs ?? 0) / 1000, 10 * MIN);
  return {
    intervalSeconds: interval,
    failingFor: c.pagesOnFirstFailure ? 0 : twoRuns,
    notEvaluatedFor: Math.max(30 * MIN, twoRuns),
    staleAfter: Math.max(60 * MIN, ceilMinutes(2 * interval + runTime)),
  };
}

/** A Prometheus duration: `0s`, `7m`, `1h15m`. */
export function promDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

const camel = (id: string) =>
  id
    .split('-')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
export const failingAlertName = (id: string) => `AegisCompliance${camel(id)}Failing`;
export const pageSeverity = (sev: Severity) => (sev === 'critical' ? 'critical' : 'warning');

function links(opts: AlertRulesOptions) {
  const base = (opts.runbookBase ?? '').replace(/\/+$/, '');
  const doc = (path: string) => (base ? `${base}/${path}` : path);
  return { runbook: (id: string) => doc(`docs/runbooks/${id}.md`), deployDoc: (anchor: string) => doc(`docs/deploy/README.md#${anchor}`) };
}

export interface Rule {
  alert: string;
  expr: string;
  for: string;
  keep_firing_for?: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string; runbook_url: string };
}
export interface RuleGroup {
  name: string;
  rules: Rule[];
}

const AUDITOR_DOWN_WINDOW = '1d';

export const texts = {
  failingSummary: (id: string) => `Compliance check ${id} is failing`,
  failingDescription: (id: string) =>
    `Check ${id} (check severity {{ $labels.check_severity }}) reports {{ $value }} finding(s) in deployment {{ $labels.deployment }}. The findings, with resources and remediation, are on the auditor's /report.`,
  notEvaluatedDescription: (id: string, forText: string) =>
    `Critical check ${id} has been {{ $labels.status }} for ${forText} in deployment {{ $labels.deployment }}: the control it proves is unverified. Configure its source, fix the error, or disable the check in the config.`,
  erroringDescription: (id: string, forText: string) =>
    `Check ${id} has ended in error for ${forText} in deployment {{ $labels.deployment }}: source down, timeout or bad data. The control it proves is unverified.`,
  staleDescription: (id: string) =>
    `Check ${id} last finished a run {{ $value | humanizeDuration }} ago in deployment {{ $labels.deployment }}: its schedule does not fire or the daemon is stuck.`,
};

/** The rule groups for these checks and the auditor itself. */
export function alertRuleGroups(checks: readonly AlertCheck[], opts: AlertRulesOptions = {}): RuleGroup[] {
  const { runbook, deployDoc } = links(opts);
  const keep = promDuration(opts.keepFiringFor ?? KEEP_FIRING_FOR);
  const sorted = [...checks].sort((a, b) => a.id.localeCompare(b.id));
  const failing: Rule[] = [];
  const evaluation: Rule[] = [];
  for (const c of sorted) {
    const t = checkTiming(c);
    const sel = `check="${c.id}"`;
    failing.push({
      alert: failingAlertName(c.id),
      // A target's findings and its status differ only in `status`: joined per target, then one
      // series per deployment and check, whichever replicas and jobs export it.
      expr:
        `max by (deployment, check, check_severity) (\n` +
        `    aegis_compliance_findings{${sel}} > 0\n` +
        `  and ignoring (status)\n` +
        `    aegis_compliance_check_status{${sel}, status="fail"} == 1\n` +
        `)\n`,
      for: promDuration(t.failingFor),
      keep_firing_for: keep,
      labels: { severity: pageSeverity(c.severity), check: c.id },
      annotations: { summary: texts.failingSummary(c.id), description: texts.failingDescription(c.id), runbook_url: runbook(c.id) },
    });
    const forText = promDuration(t.notEvaluatedFor);
    evaluation.push(
      c.severity === 'critical'
        ? {
            alert: 'AegisComplianceCriticalCheckNotEvaluated',
            expr: `max by (deployment, check, check_severity, status) (aegis_compliance_check_status{${sel}, status=~"error|skipped"}) == 1\n`,
            for: forText,
            keep_firing_for: keep,
            labels: { severity: 'critical', check: c.id },
            annotations: { summary: 'A critical compliance check is not evaluated', description: texts.notEvaluatedDescription(c.id, forText), runbook_url: deployDoc('check-not-evaluated') },
          }
        : {
            alert: 'AegisComplianceCheckErroring',
            expr: `max by (deployment, check, check_severity, status) (aegis_compliance_check_status{${sel}, status="error"}) == 1\n`,
            for: forText,
            keep_firing_for: keep,
            labels: { severity: 'warning', check: c.id },
            annotations: { summary: 'A compliance check cannot be evaluated', description: texts.erroringDescription(c.id, forText), runbook_url: deployDoc('check-not-evaluated') },
          },
      {
        alert: 'AegisComplianceResultsStale',
        // On the leader (its own target's leader series), up longer than the check may go without a run.
        expr:
          `max by (deployment, check) (\n` +
          `    (time() - aegis_compliance_check_last_run_timestamp_seconds{${sel}}) > ${t.staleAfter}\n` +
          `  and ignoring (deployment, check) (time() - process_start_time_seconds) > ${t.staleAfter}\n` +
          `  and ignoring (check) aegis_compliance_leader == 1\n` +
          `)\n`,
        for: '5m',
        keep_firing_for: keep,
        labels: { severity: pageSeverity(c.severity), check: c.id },
        annotations: { summary: 'A compliance check has stopped running', description: texts.staleDescription(c.id), runbook_url: deployDoc('results-stale') },
      },
    );
  }
  const auditor: Rule[] = [
    {
      alert: 'AegisComplianceAuditorAbsent',
      expr: 'absent(aegis_compliance_build_info)\n',
      for: '10m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'No aegis-audit daemon is being scraped',
        description: 'Prometheus has no aegis_compliance_build_info series: no aegis-audit daemon is scraped, nothing audits the deployments, and no compliance alert can fire.',
        runbook_url: deployDoc('auditor-absent-or-down'),
      },
    },
    {
      alert: 'AegisComplianceAuditorDown',
      expr: `count by (deployment) (max_over_time(aegis_compliance_build_info[${AUDITOR_DOWN_WINDOW}]))\n  unless on (deployment)\ncount by (deployment) (aegis_compliance_build_info)\n`,
      for: '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'No aegis-audit daemon answers for a deployment',
        description: 'No aegis-audit daemon auditing deployment {{ $labels.deployment }} has answered scrapes for 5 minutes (one did within the last day): its compliance results are unknown, and its alerts have stopped.',
        runbook_url: deployDoc('auditor-absent-or-down'),
      },
    },
    {
      alert: 'AegisComplianceNoLeader',
      expr: 'max by (deployment) (aegis_compliance_leader) == 0\n',
      for: '10m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'No aegis-audit replica holds the leader lock',
        description: 'Every aegis-audit replica auditing deployment {{ $labels.deployment }} stands by: no replica runs checks.',
        runbook_url: deployDoc('no-leader'),
      },
    },
    {
      alert: 'AegisComplianceSourceDown',
      expr: 'max by (deployment, source) (aegis_compliance_source_up) == 0\n',
      for: '15m',
      keep_firing_for: keep,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A source the auditor reads is failing',
        description: 'Source {{ $labels.source }} of deployment {{ $labels.deployment }} has failed for 15 minutes; checks that read it end in error.',
        runbook_url: deployDoc('source-down'),
      },
    },
  ];
  return [
    { name: 'aegis-compliance-checks', rules: failing },
    { name: 'aegis-compliance-evaluation', rules: evaluation },
    { name: 'aegis-compliance-auditor', rules: auditor },
  ];
}

const YAML_OPTS = { lineWidth: 0 } as const;

/** The rules file (Prometheus `rule_files` format). */
export function alertRulesYaml(checks: readonly AlertCheck[], opts: AlertRulesOptions = {}): string {
  const head = [
    '# Generated by alerts/generate.mjs from the check registry (each check\'s severity, schedule and',
    '# pagesOnFirstFailure): do not edit. Regenerate after changing a check:  npm run alerts',
    `# Runbook links: ${opts.runbookBase ? opts.runbookBase : 'repository paths (docs/runbooks/<check>.md)'}; set a base with --runbook-base URL.`,
    '#',
    '# One alert per deployment and check, whichever replica (leader) or scrape job exports the',
    "# result: the alerts on a check's result and on sources aggregate away instance, job and every",
    `# other target label, and keep firing for ${promDuration(opts.keepFiringFor ?? KEEP_FIRING_FOR)} after their series are gone, so a change of leader`,
    '# (the standby exports within queue.publish_interval, then a scrape and an evaluation) neither',
    '# resolves nor re-pages them; a check that really recovers resolves that much later',
    '# (--keep-firing-for). Needs Prometheus 2.42 or later (keep_firing_for).',
    '',
  ].join('\n');
  return head + stringify({ groups: alertRuleGroups(checks, opts) }, YAML_OPTS);
}

export interface PrometheusRuleOptions extends AlertRulesOptions {
  name?: string;
  /** Labels of the object; the operator's `ruleSelector` must match them. */
  labels?: Record<string, string>;
}

/** The same groups as a prometheus-operator PrometheusRule object. */
export function prometheusRuleYaml(checks: readonly AlertCheck[], opts: PrometheusRuleOptions = {}): string {
  const head = [
    '# Generated by alerts/generate.mjs: the rules of alerts/aegis-compliance.rules.yml as a',
    '# prometheus-operator PrometheusRule. Its labels must match your Prometheus\' ruleSelector',
    '# (kube-prometheus-stack selects `release: <its release name>` by default). keep_firing_for needs',
    '# Prometheus 2.42 and a prometheus-operator whose PrometheusRule has the field (0.66 or later).',
    '',
  ].join('\n');
  const obj = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: opts.name ?? 'aegis-audit', labels: opts.labels ?? { 'app.kubernetes.io/name': 'aegis-audit', release: 'prometheus' } },
    spec: { groups: alertRuleGroups(checks, opts) },
  };
  return head + stringify(obj, YAML_OPTS);
}

// ------------------------------------------------------------------------------ promtool tests

// Two replicas of one deployment's auditor as Kubernetes service discovery labels them: every
// target label differs between them, and none reaches an alert on a check's result.
const POD_A = `instance="10.0.0.7:9464", job="kubernetes-pods", namespace="aegis", pod="aegis-audit-6c9f-a"`;
const POD_B = `instance="10.0.0.8:9464", job="kubernetes-pods", namespace="aegis", pod="aegis-audit-6c9f-b"`;
const POD_C = `instance="10.0.0.9:9464", job="kubernetes-pods", namespace="aegis", pod="aegis-audit-6c9f-c"`;
const T = `deployment="prod", ${POD_A}`;
const DEPLOYMENT = { deployment: 'prod' };
const minutes = (s: number) => Math.round(s / MIN);

/** promtool's series notation for runs of samples: [value, how many]; `stale` ends a series (its target went away), `_` is no sample. */
function samples(...runs: [string | number, number][]): string {
  return runs
    .filter(([, n]) => n > 0)
    .map(([v, n]) => (v === 'stale' ? Array.from({ length: n }, () => 'stale').join(' ') : n === 1 ? `${v}` : `${v}x${n - 1}`))
    .join(' ');
}

/** Fills a description template the way Prometheus would for these labels and value. */
function fill(template: string, labels: Record<string, string>, value: string): string {
  return template.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_m, k: string) => labels[k] ?? '').replace('{{ $value }}', value);
}

interface PromtoolTest {
  interval: string;
  input_series: { series: string; values: string }[];
  alert_rule_test: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[] }[];
  promql_expr_test?: { expr: string; eval_time: string; exp_samples: { labels: string; value: number }[] }[];
}

/** The labels of a series as promtool writes them in `exp_samples`. */
const seriesLabels = (labels: Record<string, string>) =>
  `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(', ')}}`;

/**
 * An alert that fired at `from` and is still firing at `to` without a resolve in between, as
 * one alert: its ALERTS series has a firing sample at every evaluation (1 min) of the span.
 */
function firingThroughout(alertname: string, labels: Record<string, string>, from: number, to: number) {
  return {
    expr: `count_over_time(ALERTS{alertname="${alertname}", alertstate="firing"}[${to - from}m])`,
    eval_time: `${to}m`,
    exp_samples: [{ labels: seriesLabels({ alertname, alertstate: 'firing', ...labels }), value: to - from + 1 }],
  };
}

function checkTests(c: AlertCheck, opts: AlertRulesOptions): PromtoolTest[] {
  const { runbook, deployDoc } = links(opts);
  const t = checkTiming(c);
  const f = minutes(t.failingFor);
  const keep = Math.max(1, minutes(opts.keepFiringFor ?? KEEP_FIRING_FOR));
  const id = c.id;
  const sev = c.severity;
  const statusOf = (s: string, target: string) => `aegis_compliance_check_status{check="${id}", check_severity="${sev}", status="${s}", deployment="prod", ${target}}`;
  const findingsOf = (target: string) => `aegis_compliance_findings{check="${id}", check_severity="${sev}", deployment="prod", ${target}}`;
  const status = (s: string) => statusOf(s, POD_A);
  const findings = findingsOf(POD_A);
  const out: PromtoolTest[] = [];
  // Fails from minute 5 on: quiet just before `for` has elapsed, firing just after.
  const n = 5 + f + 10;
  const labels = { ...DEPLOYMENT, check: id, check_severity: sev };
  out.push({
    interval: '1m',
    input_series: [
      { series: status('fail'), values: `0x4 1x${n}` },
      { series: findings, values: `0x4 3x${n}` },
      { series: status('pass'), values: `1x4 0x${n}` },
    ],
    alert_rule_test: [
      { eval_time: `${f === 0 ? 4 : 5 + f - 1}m`, alertname: failingAlertName(id), exp_alerts: [] },
      {
        eval_time: `${f === 0 ? 5 : 5 + f + 1}m`,
        alertname: failingAlertName(id),
        exp_alerts: [
          {
            exp_labels: { severity: pageSeverity(sev), ...labels },
            exp_annotations: { summary: texts.failingSummary(id), description: fill(texts.failingDescription(id), labels, '3'), runbook_url: runbook(id) },
          },
        ],
      },
    ],
  });
  // Replicas: the leader (pod a) fails the check from minute 5 and is killed after the alert
  // fired (its series end); pod b takes the lead and exports the same result after a gap
  // shorter than keep_firing_for; later pod c exports it too for two minutes (both export
  // at once); then the check passes. One alert, firing from its first page until
  // keep_firing_for after the pass, never resolved in between; then resolved.
  const page = { severity: pageSeverity(sev), ...labels };
  const pageAnnotations = { summary: texts.failingSummary(id), description: fill(texts.failingDescription(id), labels, '3'), runbook_url: runbook(id) };
  const fired = 5 + f;
  const killed = fired + 3; // a's first minute without a sample
  const gap = Math.max(1, keep - 1);
  const took = killed + gap; // b's first failing sample
  const overlap = took + 2;
  const passed = overlap + 5;
  const end = passed + keep + 5;
  const firing = (at: number) => ({ eval_time: `${at}m`, alertname: failingAlertName(id), exp_alerts: [{ exp_labels: page, exp_annotations: pageAnnotations }] });
  out.push({
    interval: '1m',
    input_series: [
      { series: statusOf('fail', POD_A), values: samples([0, 5], [1, killed - 5], ['stale', 1]) },
      { series: findingsOf(POD_A), values: samples([0, 5], [3, killed - 5], ['stale', 1]) },
      { series: statusOf('fail', POD_B), values: samples([0, took], [1, passed - took], [0, end - passed + 1]) },
      { series: findingsOf(POD_B), values: samples([0, took], [3, passed - took], [0, end - passed + 1]) },
      { series: statusOf('pass', POD_B), values: samples([0, passed], [1, end - passed + 1]) },
      { series: statusOf('fail', POD_C), values: samples([0, overlap], [1, 2], [0, end - overlap - 1]) },
      { series: findingsOf(POD_C), values: samples([0, overlap], [3, 2], [0, end - overlap - 1]) },
    ],
    alert_rule_test: [
      firing(fired),
      firing(killed), // no replica exports the result: kept firing
      firing(took - 1),
      firing(took),
      firing(overlap + 1), // two replicas export it: still one alert
      firing(passed + keep - 1), // passed, kept firing
      { eval_time: `${passed + keep + 1}m`, alertname: failingAlertName(id), exp_alerts: [] },
    ],
    promql_expr_test: [firingThroughout(failingAlertName(id), page, fired, passed + keep - 1)],
  });
  // Erroring never pages as failing; a two-run check that fails once and then passes never pages.
  const interval = Math.max(1, minutes(t.intervalSeconds));
  out.push({
    interval: '1m',
    input_series: [
      { series: status('fail'), values: c.pagesOnFirstFailure ? `0x${n}` : `0x4 1x${interval - 1} 0x${n}` },
      { series: findings, values: c.pagesOnFirstFailure ? `0x${n}` : `0x4 3x${interval - 1} 0x${n}` },
      { series: status('error'), values: `1x${n}` },
    ],
    alert_rule_test: [{ eval_time: `${n}m`, alertname: failingAlertName(id), exp_alerts: [] }],
  });
  // Not evaluated (critical: skipped or error) / erroring (others), on both sides of `for`.
  const ne = minutes(t.notEvaluatedFor);
  const critical = sev === 'critical';
  const neName = critical ? 'AegisComplianceCriticalCheckNotEvaluated' : 'AegisComplianceCheckErroring';
  const neStatus = critical ? 'skipped' : 'error';
  const neLabels = { ...DEPLOYMENT, check: id, check_severity: sev, status: neStatus };
  const neTemplate = critical ? texts.notEvaluatedDescription(id, promDuration(t.notEvaluatedFor)) : texts.erroringDescription(id, promDuration(t.notEvaluatedFor));
  out.push({
    interval: '1m',
    input_series: [
      { series: status(neStatus), values: `0x4 1x${ne + 10}` },
      { series: status('pass'), values: `1x4 0x${ne + 10}` },
    ],
    alert_rule_test: [
      { eval_time: `${5 + ne - 1}m`, alertname: neName, exp_alerts: [] },
      {
        eval_time: `${5 + ne + 1}m`,
        alertname: neName,
        exp_alerts: [
          {
            exp_labels: { severity: critical ? 'critical' : 'warning', ...neLabels },
            exp_annotations: {
              summary: critical ? 'A critical compliance check is not evaluated' : 'A compliance check cannot be evaluated',
              description: fill(neTemplate, neLabels, '1'),
              runbook_url: deployDoc('check-not-evaluated'),
            },
          },
        ],
      },
    ],
  });
  // Stale: the check last finished at minute 1 and never again; the daemon started at 0.
  const st = minutes(t.staleAfter);
  const len = st + 20;
  const staleLabels = { ...DEPLOYMENT, check: id };
  out.push({
    interval: '1m',
    input_series: [
      { series: `aegis_compliance_check_last_run_timestamp_seconds{check="${id}", ${T}}`, values: `0 60x${len}` },
      { series: `process_start_time_seconds{${POD_A}}`, values: `0x${len}` },
      { series: `aegis_compliance_leader{${T}}`, values: `1x${len}` },
      // a standby (never ran the check) is never stale, however long it has been up
      { series: `aegis_compliance_check_last_run_timestamp_seconds{check="${id}", deployment="prod", ${POD_B}}`, values: `0x${len}` },
      { series: `process_start_time_seconds{${POD_B}}`, values: `0x${len}` },
      { series: `aegis_compliance_leader{deployment="prod", ${POD_B}}`, values: `0x${len}` },
    ],
    alert_rule_test: [
      // stale from just after minute 1 + staleAfter; fires 5 minutes later
      { eval_time: `${1 + st + 5 - 1}m`, alertname: 'AegisComplianceResultsStale', exp_alerts: [] },
      {
        eval_time: `${1 + st + 5 + 1}m`,
        alertname: 'AegisComplianceResultsStale',
        exp_alerts: [
          {
            exp_labels: { severity: pageSeverity(sev), ...staleLabels },
            exp_annotations: {
              summary: 'A compliance check has stopped running',
              // humanizeDuration of (1 + st + 6 - 1) minutes since minute 1
              description: fill(texts.staleDescription(id), staleLabels, '').replace('{{ $value | humanizeDuration }}', humanize((st + 6) * MIN)),
              runbook_url: deployDoc('results-stale'),
            },
          },
        ],
      },
    ],
  });
  // A check that runs on schedule is never stale, however long the daemon has been up.
  out.push({
    interval: '1m',
    input_series: [
      { series: `aegis_compliance_check_last_run_timestamp_seconds{check="${id}", ${T}}`, values: `0+60x${len}` },
      { series: `process_start_time_seconds{${POD_A}}`, values: `0x${len}` },
      { series: `aegis_compliance_leader{${T}}`, values: `1x${len}` },
    ],
    alert_rule_test: [{ eval_time: `${len}m`, alertname: 'AegisComplianceResultsStale', exp_alerts: [] }],
  });
  return out;
}

/** Prometheus' humanizeDuration for whole minutes: `1h 5m 0s`, `45m 0s`. */
function humanize(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s}s`].filter(Boolean).join(' ');
}

function auditorTests(opts: AlertRulesOptions): PromtoolTest[] {
  const { deployDoc } = links(opts);
  const build = (d: string, inst: string) => `aegis_compliance_build_info{deployment="${d}", version="0.1.0", instance="${inst}", job="kubernetes-pods"}`;
  const leader = (d: string, inst: string) => `aegis_compliance_leader{deployment="${d}", instance="${inst}", job="kubernetes-pods"}`;
  return [
    // Absent: no daemon at all for 10 minutes; quiet while any daemon is scraped, whatever its job.
    {
      interval: '1m',
      input_series: [{ series: 'up{job="node", instance="n1:9100"}', values: '1x30' }],
      alert_rule_test: [
        { eval_time: '9m', alertname: 'AegisComplianceAuditorAbsent', exp_alerts: [] },
        {
          eval_time: '11m',
          alertname: 'AegisComplianceAuditorAbsent',
          exp_alerts: [
            {
              exp_labels: { severity: 'critical' },
              exp_annotations: {
                summary: 'No aegis-audit daemon is being scraped',
                description: 'Prometheus has no aegis_compliance_build_info series: no aegis-audit daemon is scraped, nothing audits the deployments, and no compliance alert can fire.',
                runbook_url: deployDoc('auditor-absent-or-down'),
              },
            },
          ],
        },
      ],
    },
    {
      interval: '1m',
      input_series: [{ series: build('prod', 'a:9464'), values: '1x30' }],
      alert_rule_test: [{ eval_time: '20m', alertname: 'AegisComplianceAuditorAbsent', exp_alerts: [] }],
    },
    // Down: prod's daemon stops answering at minute 10 (its series go stale) while staging's
    // still answers: prod pages 5 minutes later, named; staging does not.
    {
      interval: '1m',
      input_series: [
        { series: build('prod', 'a:9464'), values: '1x9 stale' },
        { series: build('staging', 'b:9464'), values: '1x40' },
      ],
      alert_rule_test: [
        { eval_time: '14m', alertname: 'AegisComplianceAuditorDown', exp_alerts: [] },
        {
          eval_time: '16m',
          alertname: 'AegisComplianceAuditorDown',
          exp_alerts: [
            {
              exp_labels: { severity: 'critical', deployment: 'prod' },
              exp_annotations: {
                summary: 'No aegis-audit daemon answers for a deployment',
                description: 'No aegis-audit daemon auditing deployment prod has answered scrapes for 5 minutes (one did within the last day): its compliance results are unknown, and its alerts have stopped.',
                runbook_url: deployDoc('auditor-absent-or-down'),
              },
            },
          ],
        },
      ],
    },
    // A replaced pod (new instance, same deployment) is not down.
    {
      interval: '1m',
      input_series: [
        { series: build('prod', 'old:9464'), values: '1x9 stale' },
        { series: build('prod', 'new:9464'), values: '_x9 1x30' },
      ],
      alert_rule_test: [{ eval_time: '30m', alertname: 'AegisComplianceAuditorDown', exp_alerts: [] }],
    },
    // NoLeader: both replicas of prod stand by from minute 5.
    {
      interval: '1m',
      input_series: [
        { series: leader('prod', 'a:9464'), values: '1x4 0x30' },
        { series: leader('prod', 'b:9464'), values: '0x35' },
        { series: leader('staging', 'c:9464'), values: '1x35' },
      ],
      alert_rule_test: [
        { eval_time: '14m', alertname: 'AegisComplianceNoLeader', exp_alerts: [] },
        {
          eval_time: '16m',
          alertname: 'AegisComplianceNoLeader',
          exp_alerts: [
            {
              exp_labels: { severity: 'critical', deployment: 'prod' },
              exp_annotations: {
                summary: 'No aegis-audit replica holds the leader lock',
                description: 'Every aegis-audit replica auditing deployment prod stands by: no replica runs checks.',
                runbook_url: deployDoc('no-leader'),
              },
            },
          ],
        },
      ],
    },
    // Leadership moved from a to b: one replica leads at every moment.
    {
      interval: '1m',
      input_series: [
        { series: leader('prod', 'a:9464'), values: '1x10 0x20' },
        { series: leader('prod', 'b:9464'), values: '0x10 1x20' },
      ],
      alert_rule_test: [{ eval_time: '30m', alertname: 'AegisComplianceNoLeader', exp_alerts: [] }],
    },
    // SourceDown: postgres fails from minute 5, for 15 minutes.
    {
      interval: '1m',
      input_series: [
        { series: `aegis_compliance_source_up{source="postgres", ${T}}`, values: '1x4 0x30' },
        { series: `aegis_compliance_source_up{source="logs", ${T}}`, values: '1x35' },
      ],
      alert_rule_test: [
        { eval_time: '19m', alertname: 'AegisComplianceSourceDown', exp_alerts: [] },
        {
          eval_time: '21m',
          alertname: 'AegisComplianceSourceDown',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning', source: 'postgres', ...DEPLOYMENT },
              exp_annotations: {
                summary: 'A source the auditor reads is failing',
                description: 'Source postgres of deployment prod has failed for 15 minutes; checks that read it end in error.',
                runbook_url: deployDoc('source-down'),
              },
            },
          ],
        },
      ],
    },
    {
      interval: '1m',
      input_series: [{ series: `aegis_compliance_source_up{source="postgres", ${T}}`, values: '1x4 0x5 1x30' }],
      alert_rule_test: [{ eval_time: '30m', alertname: 'AegisComplianceSourceDown', exp_alerts: [] }],
    },
    // The leader (pod a) that saw postgres down is killed at minute 25; pod b, leading from
    // minute 28, sees it down too: the same alert, firing throughout.
    {
      interval: '1m',
      input_series: [
        { series: `aegis_compliance_source_up{source="postgres", deployment="prod", ${POD_A}}`, values: samples([1, 5], [0, 20], ['stale', 1]) },
        { series: `aegis_compliance_source_up{source="postgres", deployment="prod", ${POD_B}}`, values: samples(['_', 28], [0, 20]) },
      ],
      alert_rule_test: [26, 27, 40].map((at) => ({
        eval_time: `${at}m`,
        alertname: 'AegisComplianceSourceDown',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', source: 'postgres', ...DEPLOYMENT },
            exp_annotations: {
              summary: 'A source the auditor reads is failing',
              description: 'Source postgres of deployment prod has failed for 15 minutes; checks that read it end in error.',
              runbook_url: deployDoc('source-down'),
            },
          },
        ],
      })),
      promql_expr_test: [firingThroughout('AegisComplianceSourceDown', { severity: 'warning', source: 'postgres', ...DEPLOYMENT }, 20, 40)],
    },
  ];
}

/** promtool unit tests of every rule: each fires after its `for` and stays quiet before it and when it should. */
export function alertRulesTestsYaml(checks: readonly AlertCheck[], opts: AlertRulesOptions = {}, rulesFile = '../aegis-compliance.rules.yml'): string {
  const sorted = [...checks].sort((a, b) => a.id.localeCompare(b.id));
  const doc = {
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: [...sorted.flatMap((c) => checkTests(c, opts)), ...auditorTests(opts)],
  };
  return `# Generated by alerts/generate.mjs: do not edit.  promtool test rules alerts/tests/*.yml\n${stringify(doc, YAML_OPTS)}`;
}
