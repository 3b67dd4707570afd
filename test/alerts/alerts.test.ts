/**
 * The alert rules, their promtool unit tests and the Alertmanager example pass the real
 * tools; and rules, registry and runbooks agree: every registered check has an alert with
 * its `check` label, the right severity, a `for` of at least two runs of its schedule, and
 * a runbook file. Checks are discovered from the registry, so checks added later are covered.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { requireBinary } from '../helpers/binaries';
import { join } from 'node:path';
import cron from 'node-cron';
import { parse } from 'yaml';
import { registry } from '../../checks';
import type { Registry } from '../../src/core/registry';
import { stubCheck, testRegistry } from '../daemon/helpers';

const ROOT = join(__dirname, '..', '..');
const ALERTS = join(ROOT, 'alerts');
const RULES = join(ALERTS, 'aegis-compliance.rules.yml');
const TESTS = readdirSync(join(ALERTS, 'tests')).filter((f) => f.endsWith('.yml')).map((f) => join(ALERTS, 'tests', f));


interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules: Rule[] = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

function run(cmd: 'promtool' | 'amtool', args: string[]) {
  requireBinary(`/usr/bin/${cmd}`, cmd === 'promtool' ? 'prometheus' : 'prometheus-alertmanager');
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function seconds(d: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`unsupported duration ${d}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** The longest gap between two consecutive runs of a cron schedule, over its next runs. */
function longestInterval(schedule: string): number {
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

/** What is out of step between a registry and the rules/runbooks; empty when all agree. */
function problems(reg: Registry): string[] {
  const out: string[] = [];
  for (const [id, check] of reg) {
    const alerts = rules.filter((r) => r.labels?.check === id);
    if (alerts.length === 0) {
      out.push(`${id}: no alert with label check="${id}" in alerts/aegis-compliance.rules.yml (add a row to alerts/generate.mjs)`);
      continue;
    }
    for (const a of alerts) {
      if (!a.expr.includes(`check="${id}"`)) out.push(`${id}: alert ${a.alert} does not select check="${id}"`);
      const want = check.meta.severity === 'critical' ? 'critical' : 'warning';
      if (a.labels?.severity !== want) out.push(`${id}: alert ${a.alert} has severity ${a.labels?.severity}, want ${want} (check severity ${check.meta.severity})`);
      const interval = longestInterval(check.meta.schedule);
      if (!a.for || seconds(a.for) < 2 * interval) out.push(`${id}: alert ${a.alert} has for ${a.for}, want at least two runs of ${check.meta.schedule} (${(2 * interval) / 60} min)`);
      if (!a.annotations?.runbook_url?.endsWith(`/docs/runbooks/${id}.md`)) out.push(`${id}: alert ${a.alert} runbook_url does not point at docs/runbooks/${id}.md`);
    }
    if (check.meta.runbook !== `docs/runbooks/${id}.md`) out.push(`${id}: meta.runbook is ${check.meta.runbook}, want docs/runbooks/${id}.md`);
    if (!existsSync(join(ROOT, 'docs', 'runbooks', `${id}.md`))) out.push(`${id}: docs/runbooks/${id}.md does not exist`);
  }
  return out;
}

describe('alert rules', () => {
  test('promtool check rules passes', () => {
    const r = run('promtool', ['check', 'rules', RULES]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  test('promtool test rules passes for every test file', () => {
    const r = run('promtool', ['test', 'rules', ...TESTS]);
    expect(r.out).not.toContain('FAILED');
    expect(r.status).toBe(0);
  });

  test('amtool check-config passes on the Alertmanager example, and routes by severity', () => {
    const cfg = join(ALERTS, 'alertmanager.example.yml');
    const r = run('amtool', ['check-config', cfg]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
    expect(run('amtool', ['config', 'routes', 'test', `--config.file=${cfg}`, 'severity=critical', 'check=receipt-chain']).out).toMatch(/^compliance-pager/);
    expect(run('amtool', ['config', 'routes', 'test', `--config.file=${cfg}`, 'severity=warning', 'check=receipt-chain']).out).toMatch(/^compliance-tickets/);
  });

  test('every alert has severity, summary, description and runbook_url; names share the prefix', () => {
    for (const r of rules) {
      expect(r.alert).toMatch(/^AegisCompliance[A-Z][A-Za-z]+$/);
      expect(['critical', 'warning']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
      expect(r.annotations?.summary).not.toContain('{{'); // static
      expect(r.annotations?.description).toContain('{{'); // templated
      expect(r.annotations?.runbook_url).toMatch(/^https:\/\/.+\.md(#[a-z-]+)?$/);
      expect(r.for).toBeDefined();
    }
    for (const meta of ['AuditorAbsent', 'AuditorDown', 'ResultsStale', 'CheckErroring', 'SourceDown', 'NoLeader']) {
      expect(rules.some((r) => r.alert === `AegisCompliance${meta}`)).toBe(true);
    }
  });

  test('every alert has promtool tests that see it fire and stay quiet', () => {
    const fired = new Set<string>();
    const quiet = new Set<string>();
    for (const file of TESTS) {
      const doc = parse(readFileSync(file, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] };
      for (const t of doc.tests) {
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts && a.exp_alerts.length > 0 ? fired : quiet).add(a.alertname);
      }
    }
    for (const r of rules) {
      expect({ alert: r.alert, fires: fired.has(r.alert), quiet: quiet.has(r.alert) }).toEqual({ alert: r.alert, fires: true, quiet: true });
    }
  });

  test('every registered check has its alert, severity, for and runbook', () => {
    expect(problems(registry)).toEqual([]);
  });

  test('every alert that names a check names a registered one', () => {
    const named = rules.filter((r) => r.labels?.check !== undefined || /check="/.test(r.expr));
    expect(named.length).toBeGreaterThan(0);
    const unknown: string[] = [];
    for (const r of named) {
      for (const id of [r.labels?.check, ...[...r.expr.matchAll(/check="([^"]+)"/g)].map((m) => m[1])]) {
        if (id !== undefined && !registry.has(id)) unknown.push(`${r.alert}: ${id}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  test('the agreement check catches a check without alert, a wrong severity, a short for and a missing runbook', () => {
    const reg = testRegistry([
      stubCheck('not-in-alerts', async () => undefined),
      stubCheck('historical-keys', async () => undefined, { severity: 'medium', schedule: '0 * * * *' }),
    ]);
    const p = problems(reg).join('\n');
    expect(p).toContain('not-in-alerts: no alert');
    expect(p).toContain('historical-keys: alert AegisComplianceHistoricalKeysFailing has severity critical, want warning');
    expect(p).toContain('historical-keys: alert AegisComplianceHistoricalKeysFailing has for 30m, want at least two runs of 0 * * * * (120 min)');
  });
});
