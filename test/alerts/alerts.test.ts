/**
 * The alert rules, their promtool unit tests and the Alertmanager example pass the real
 * tools; the shipped files are exactly what alerts/generate.mjs writes from the registry; and
 * rules, registry and runbooks agree both ways: every registered check has its alerts with its
 * `check` label, the right severity, a `for` that fits its schedule (the first failing run for
 * integrity and leak checks, the next run for the others) and a runbook that exists; every
 * alert that names a check names a registered one. Checks are discovered from the registry, so
 * checks added later are covered.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import cron from 'node-cron';
import { parse } from 'yaml';
import { requireBinary } from '../helpers/binaries';
import { registry } from '../../checks';
import type { Registry } from '../../src/core/registry';
import { alertCheck, alertRulesTestsYaml, alertRulesYaml, prometheusRuleYaml } from '../../src/outputs/alert-rules';
import { stubCheck, testRegistry } from '../daemon/helpers';

const ROOT = join(__dirname, '..', '..');
const ALERTS = join(ROOT, 'alerts');
const RULES = join(ALERTS, 'aegis-compliance.rules.yml');
const TESTS = readdirSync(join(ALERTS, 'tests')).filter((f) => f.endsWith('.yml')).map((f) => join(ALERTS, 'tests', f));
const PROMETHEUS_RULE = join(ROOT, 'docs', 'deploy', 'kubernetes', 'prometheusrule.yaml');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  keep_firing_for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules: Rule[] = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

function run(cmd: 'promtool' | 'amtool' | 'node', args: string[]) {
  if (cmd !== 'node') requireBinary(`/usr/bin/${cmd}`, cmd === 'promtool' ? 'prometheus' : 'prometheus-alertmanager');
  const r = spawnSync(cmd === 'node' ? process.execPath : cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function seconds(d: string): number {
  if (d === '0s') return 0;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  if (!m || d === '') throw new Error(`unsupported duration ${d}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** The longest gap between two consecutive runs of a cron schedule (computed here, not by the generator). */
function longestInterval(schedule: string): number {
  const task = cron.createTask(schedule, () => undefined);
  try {
    const runs = task.getNextRuns(100).map((d) => d.getTime());
    return Math.max(...runs.slice(1).map((t, i) => (t - runs[i]) / 1000));
  } finally {
    void task.destroy();
  }
}

/** What is out of step between a registry and the rules/runbooks; empty when all agree. */
function problems(reg: Registry, against: Rule[] = rules): string[] {
  const out: string[] = [];
  for (const [id, check] of reg) {
    const named = against.filter((r) => r.labels?.check === id);
    const failing = named.filter((r) => r.alert.endsWith('Failing'));
    if (failing.length === 0) {
      out.push(`${id}: no failing alert with label check="${id}" in alerts/aegis-compliance.rules.yml (run npm run alerts)`);
      continue;
    }
    const interval = longestInterval(check.meta.schedule);
    for (const a of named) if (!a.expr.includes(`check="${id}"`)) out.push(`${id}: alert ${a.alert} does not select check="${id}"`);
    for (const a of failing) {
      const want = check.meta.severity === 'critical' ? 'critical' : 'warning';
      if (a.labels?.severity !== want) out.push(`${id}: alert ${a.alert} has severity ${a.labels?.severity}, want ${want} (check severity ${check.meta.severity})`);
      const f = seconds(a.for ?? '');
      if (check.meta.pagesOnFirstFailure) {
        if (f !== 0) out.push(`${id}: alert ${a.alert} has for ${a.for}, want 0s (pages on the first failing run)`);
      } else if (f < interval + 120 || f > 2 * Math.max(interval, 120)) {
        out.push(`${id}: alert ${a.alert} has for ${a.for}, want the next run of ${check.meta.schedule}: between ${(interval + 120) / 60} and ${(2 * Math.max(interval, 120)) / 60} min`);
      }
      if (a.annotations?.runbook_url !== `docs/runbooks/${id}.md`) out.push(`${id}: alert ${a.alert} runbook_url is ${a.annotations?.runbook_url}, want docs/runbooks/${id}.md`);
    }
    const notEvaluated = check.meta.severity === 'critical' ? 'AegisComplianceCriticalCheckNotEvaluated' : 'AegisComplianceCheckErroring';
    const ne = named.find((r) => r.alert === notEvaluated);
    if (!ne) out.push(`${id}: no ${notEvaluated} alert`);
    else if (seconds(ne.for ?? '') < Math.max(1800, interval)) out.push(`${id}: ${notEvaluated} has for ${ne.for}, want at least 30 min and one run`);
    if (!named.some((r) => r.alert === 'AegisComplianceResultsStale')) out.push(`${id}: no AegisComplianceResultsStale alert`);
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
  }, 300_000);

  test('amtool check-config passes on the Alertmanager example; it routes by severity and groups by deployment and check', () => {
    const cfg = join(ALERTS, 'alertmanager.example.yml');
    const r = run('amtool', ['check-config', cfg]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
    expect(run('amtool', ['config', 'routes', 'test', `--config.file=${cfg}`, 'severity=critical', 'check=receipt-chain', 'deployment=prod']).out).toMatch(/^compliance-pager/);
    expect(run('amtool', ['config', 'routes', 'test', `--config.file=${cfg}`, 'severity=warning', 'check=receipt-chain', 'deployment=prod']).out).toMatch(/^compliance-tickets/);
    const am = parse(readFileSync(cfg, 'utf8')) as { route: { group_by: string[]; group_wait: string; group_interval: string; routes: { group_by?: string[] }[] }; inhibit_rules: { equal: string[] }[] };
    expect([...am.route.group_by].sort()).toEqual(['check', 'deployment']);
    for (const r2 of am.route.routes) expect(r2.group_by).toBeUndefined(); // inherited: one page per deployment and check
    expect(am.route.group_wait).toBeDefined();
    expect(am.route.group_interval).toBeDefined();
    for (const i of am.inhibit_rules) expect(i.equal).toEqual(expect.arrayContaining(['deployment', 'check']));
  });

  test('the shipped rules, their tests and the PrometheusRule are what alerts/generate.mjs writes from the registry', () => {
    const checks = [...registry.values()].map((c) => alertCheck(c.meta));
    const stale = [
      [RULES, alertRulesYaml(checks)],
      [join(ALERTS, 'tests', 'aegis-compliance.test.yml'), alertRulesTestsYaml(checks)],
      [PROMETHEUS_RULE, prometheusRuleYaml(checks)],
    ]
      .filter(([file, text]) => readFileSync(file, 'utf8') !== text)
      .map(([file]) => file);
    expect({ stale, fix: 'npm run alerts' }).toEqual({ stale: [], fix: 'npm run alerts' });
  });

  test('every alert has severity, summary, description and a runbook that exists; names share the prefix; none selects on job', () => {
    const deployDoc = readFileSync(join(ROOT, 'docs', 'deploy', 'README.md'), 'utf8');
    for (const r of rules) {
      expect(r.alert).toMatch(/^AegisCompliance[A-Z][A-Za-z]+$/);
      expect(['critical', 'warning']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
      expect(r.annotations?.summary).not.toContain('{{'); // static
      if (r.alert !== 'AegisComplianceAuditorAbsent') expect(r.annotations?.description).toContain('{{'); // templated (absent() has no labels)
      expect(r.for).toBeDefined();
      expect(r.expr).not.toMatch(/\bjob\s*=/); // works whatever the scrape job is called
      const [path, anchor] = (r.annotations?.runbook_url ?? '').split('#');
      expect({ alert: r.alert, path, exists: existsSync(join(ROOT, path)) }).toEqual({ alert: r.alert, path, exists: true });
      if (anchor) expect({ alert: r.alert, anchor, found: new RegExp(`^#+ ${anchor}$`, 'm').test(deployDoc) }).toEqual({ alert: r.alert, anchor, found: true });
      if (r.labels?.check === undefined) continue;
      expect(r.annotations?.description).toContain('{{ $labels.deployment }}');
    }
    for (const meta of ['AuditorAbsent', 'AuditorDown', 'ResultsStale', 'CriticalCheckNotEvaluated', 'CheckErroring', 'SourceDown', 'NoLeader']) {
      expect(rules.some((r) => r.alert === `AegisCompliance${meta}`)).toBe(true);
    }
  });

  test("an alert on a check's result or a source is one per deployment, whichever replica or scrape job exports it, and outlasts a change of leader", () => {
    // Labels that name where a series was scraped from: they differ between replicas (and jobs).
    const target = ['instance', 'job', 'pod', 'namespace', 'node', 'container', 'endpoint', 'service', 'replica'];
    const perResult = rules.filter((r) => r.labels?.check !== undefined || r.alert === 'AegisComplianceSourceDown');
    expect(perResult.length).toBeGreaterThan(3 * registry.size - 1);
    for (const r of perResult) {
      const by = /^max by \(([a-z_, ]+)\)/.exec(r.expr);
      expect({ alert: r.alert, aggregated: by !== null }).toEqual({ alert: r.alert, aggregated: true });
      const kept = (by?.[1] ?? '').split(',').map((l) => l.trim());
      expect({ alert: r.alert, kept: kept.filter((l) => target.includes(l)) }).toEqual({ alert: r.alert, kept: [] });
      expect(kept).toContain('deployment');
      // every label an annotation shows is one the alert has
      const shown = [...Object.values(r.annotations ?? {}).join(' ').matchAll(/\$labels\.([a-z_]+)/g)].map((m) => m[1]);
      const has = new Set([...kept, ...Object.keys(r.labels ?? {})]);
      expect({ alert: r.alert, missing: shown.filter((l) => !has.has(l)) }).toEqual({ alert: r.alert, missing: [] });
      // queue.publish_interval (5 s) + a scrape + an evaluation of up to 1 min each fit, with room
      expect({ alert: r.alert, keep: seconds(r.keep_firing_for ?? '0s') >= 180 }).toEqual({ alert: r.alert, keep: true });
    }
    // No alert shows a label only one replica's series carry.
    for (const r of rules) expect({ alert: r.alert, instance: /\$labels\.(instance|job|pod)\b/.test(JSON.stringify(r.annotations)) }).toEqual({ alert: r.alert, instance: false });
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

  test('every registered check has its alerts, severity, for and runbook', () => {
    expect(problems(registry)).toEqual([]);
  });

  test('integrity and leak checks page on the first failing run; the others wait for the next run', () => {
    const firstRun = ['receipt-chain', 'signing-key-source', 'ssm-persisted-secrets', 'static-vault-token', 'model-artifact-signature', 'secrets-in-logs', 'pem-files-at-rest', 'dev-fallback-secrets'];
    const twoRuns = ['historical-keys', 'signing-key-fingerprint', 'internal-secret-drift', 'auth-failure-spike', 'credential-age', 'vault-token-hygiene', 'runtime-secrets-present', 'mtls-enforced', 'auth-mode', 'oidc-jwks'];
    const forOf = (id: string) => rules.find((r) => r.labels?.check === id && r.alert.endsWith('Failing'))?.for;
    for (const id of firstRun.filter((i) => registry.has(i))) expect({ id, for: forOf(id) }).toEqual({ id, for: '0s' });
    for (const id of twoRuns.filter((i) => registry.has(i))) expect({ id, zero: forOf(id) === '0s' }).toEqual({ id, zero: false });
    // a 5-minute check never waits 30 minutes
    for (const [id, c] of registry) if (c.meta.schedule === '*/5 * * * *') expect(seconds(forOf(id) ?? '')).toBeLessThanOrEqual(600);
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

  test('the agreement check catches a check without alert, a wrong severity, a wrong for and a missing runbook', () => {
    const reg = testRegistry([
      stubCheck('not-in-alerts', async () => undefined),
      stubCheck('historical-keys', async () => undefined, { severity: 'medium', schedule: '0 * * * *' }),
    ]);
    const p = problems(reg).join('\n');
    expect(p).toContain('not-in-alerts: no failing alert');
    expect(p).toContain('historical-keys: alert AegisComplianceHistoricalKeysFailing has severity critical, want warning');
    expect(p).toContain('historical-keys: alert AegisComplianceHistoricalKeysFailing has for 7m, want the next run of 0 * * * *: between 62 and 120 min');
    expect(p).toContain('historical-keys: no AegisComplianceCheckErroring alert');
    // a first-run check whose rule waits, and rules without their evaluation alerts
    const receipt = registry.get('receipt-chain');
    const waiting = rules.map((r) => (r.labels?.check === 'receipt-chain' && r.alert.endsWith('Failing') ? { ...r, for: '19m' } : r)).filter((r) => !(r.labels?.check === 'receipt-chain' && !r.alert.endsWith('Failing')));
    const p2 = problems(testRegistry([receipt as NonNullable<typeof receipt>]), waiting).join('\n');
    expect(p2).toContain('receipt-chain: alert AegisComplianceReceiptChainFailing has for 19m, want 0s (pages on the first failing run)');
    expect(p2).toContain('receipt-chain: no AegisComplianceCriticalCheckNotEvaluated alert');
    expect(p2).toContain('receipt-chain: no AegisComplianceResultsStale alert');
  });

  test("generate.mjs follows a deployment's config (schedules, disabled checks) and a runbook base", () => {
    const dir = mkdtempSync(join(tmpdir(), 'aegis-alerts-'));
    try {
      writeFileSync(
        join(dir, 'audit.yaml'),
        'deployment: prod\nchecks:\n  historical-keys: { schedule: "0 * * * *" }\n  credential-age: { enabled: false }\n',
      );
      const out = join(dir, 'out');
      const r = run('node', ['alerts/generate.mjs', '--config', join(dir, 'audit.yaml'), '--out', out, '--runbook-base', 'https://git.example.com/org/aegis-audit/blob/v1/', '--keep-firing-for', '12m']);
      expect(r.out).toContain('wrote alerts');
      expect(r.status).toBe(0);
      const got = (parse(readFileSync(join(out, 'aegis-compliance.rules.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
      expect(got.find((x) => x.alert === 'AegisComplianceHistoricalKeysFailing')?.for).toBe('1h15m');
      expect(got.some((x) => x.labels?.check === 'credential-age')).toBe(false);
      expect(got.find((x) => x.alert === 'AegisComplianceReceiptChainFailing')?.keep_firing_for).toBe('12m');
      expect(got.find((x) => x.alert === 'AegisComplianceSourceDown')?.keep_firing_for).toBe('12m');
      expect(got.find((x) => x.alert === 'AegisComplianceReceiptChainFailing')?.annotations?.runbook_url).toBe('https://git.example.com/org/aegis-audit/blob/v1/docs/runbooks/receipt-chain.md');
      expect(run('promtool', ['check', 'rules', join(out, 'aegis-compliance.rules.yml')]).status).toBe(0);
      expect(readFileSync(join(out, 'prometheusrule.yaml'), 'utf8')).toContain('kind: PrometheusRule');
      // --config without --out would overwrite the shipped defaults: refused
      const refused = run('node', ['alerts/generate.mjs', '--config', join(dir, 'audit.yaml')]);
      expect(refused.status).toBe(2);
      expect(refused.out).toContain('--config needs --out');
      const short = run('node', ['alerts/generate.mjs', '--keep-firing-for', '30s', '--out', out]);
      expect(short.status).toBe(2);
      expect(short.out).toContain('--keep-firing-for 30s: want whole minutes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
