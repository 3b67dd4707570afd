/**
 * The Grafana dashboard (dashboards/aegis-compliance.json) is what its typed builder writes,
 * every query's metrics exist in a real /metrics scrape of the daemon auditing the demo
 * sandbox, promtool parses every expression (as recording rules in a throwaway file), and
 * every query filters on the deployment variable.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { registry } from '../../checks';
import { dashboardJson, DASHBOARD_UID } from '../../dashboards/aegis-compliance';
import { startDemo, type DemoResult } from '../../src/app/demo';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/core/logger';
import { startDaemon, type Daemon } from '../../src/daemon';
import { requireBinary } from '../helpers/binaries';
import { adminUrl } from '../helpers/pg';
import { get } from '../daemon/helpers';

const ROOT = join(__dirname, '..', '..');
const FILE = join(ROOT, 'dashboards', 'aegis-compliance.json');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const board = JSON.parse(readFileSync(FILE, 'utf8')) as Obj;
const panels: Obj[] = (board.panels as Obj[]).flatMap((p) => (p.type === 'row' ? (p.panels as Obj[]) : [p]));
const queries: { panel: string; expr: string }[] = panels.flatMap((p) => (p.targets as Obj[]).map((t) => ({ panel: p.title as string, expr: t.expr as string })));
const variableQueries: string[] = (board.templating.list as Obj[]).filter((v) => v.type === 'query').map((v) => v.query as string);

/** Metric names a PromQL expression (or a label_values() variable query) reads. */
function metricNames(expr: string): string[] {
  const stripped = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
  const words = [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]);
  const KEYWORDS = new Set(['sum', 'count', 'max', 'min', 'avg', 'by', 'on', 'and', 'or', 'unless', 'group', 'group_left', 'group_right', 'ignoring', 'without', 'time', 'vector', 'increase', 'rate', 'label_values', 'deployment', 'instance', 'job', 'check', 'check_severity', 'status', 'source', 'reason', 'outcome', 'max_over_time']);
  return [...new Set(words.filter((w) => !KEYWORDS.has(w)))];
}

/** Grafana's variables, as Prometheus would see them once Grafana has substituted them. */
const substitute = (expr: string) => expr.replace(/\$deployment/g, '.+').replace(/\$__rate_interval/g, '2m').replace(/\$__range/g, '1h').replace(/\$__interval/g, '1m');

test('the committed dashboard is what dashboards/aegis-compliance.ts builds', () => {
  expect(readFileSync(FILE, 'utf8') === dashboardJson() ? 'up to date' : 'stale: run npm run dashboards').toBe('up to date');
  expect(board.uid).toBe(DASHBOARD_UID);
});

test('the dashboard shows what the issue asks, every query filters on the deployment variable, and panels do not overlap', () => {
  const titles = panels.map((p) => p.title as string);
  for (const t of ['Overall state', 'Checks by status and severity', 'Findings over time', 'Time since last success per check', 'Sources up', 'Source errors', 'Run durations', 'Rows verified', 'Verification lag']) {
    expect(titles).toContain(t);
  }
  expect(queries.length).toBeGreaterThan(15);
  for (const q of queries) expect({ panel: q.panel, filtered: q.expr.includes('deployment=~"$deployment"') }).toEqual({ panel: q.panel, filtered: true });
  for (const q of queries) expect(q.expr).not.toMatch(/\bjob\s*=/);
  for (const p of panels) expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
  const cells = new Set<string>();
  for (const p of [...(board.panels as Obj[]), ...panels]) {
    const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
    expect(x + w).toBeLessThanOrEqual(24);
    for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
      expect({ panel: p.title, cell: `${i},${j}`, free: !cells.has(`${i},${j}`) }).toEqual({ panel: p.title, cell: `${i},${j}`, free: true });
      cells.add(`${i},${j}`);
    }
  }
});

test('promtool parses every expression of the dashboard', () => {
  requireBinary('/usr/bin/promtool', 'prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'aegis-dashboard-'));
  try {
    const file = join(dir, 'dashboard-exprs.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `aegis:dashboard_query:${i}`, expr: substitute(q.expr) })) }] }));
    const r = spawnSync('/usr/bin/promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
    expect(`${r.stdout}${r.stderr}`).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(r.status).toBe(0);
    // and a broken expression is refused (the check is not vacuous)
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: [{ record: 'aegis:broken', expr: 'sum by (check (aegis_compliance_findings)' }] }] }));
    expect(spawnSync('/usr/bin/promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 }).status).not.toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('against the daemon auditing the demo sandbox', () => {
  let out: string;
  let demo: DemoResult | undefined;
  let daemon: Daemon | undefined;
  let exposition = '';

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'aegis-dashboard-demo-'));
    demo = await startDemo(registry, { out, rows: 300, violations: 'default', adminUrl: adminUrl(), logger: silentLogger() });
    // source_errors_total has series only once a source failed: CloudWatch Logs refuses the auditor, so the
    // scrape also holds what the "Source errors" panel reads
    await demo.sandbox.cloud!.emulators.logs.faults.inject('forbidden');
    const loaded = loadConfig(demo.configPath, { registry });
    daemon = await startDaemon({ loaded, registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
    await daemon.ready;
    exposition = (await get(daemon.address, '/metrics')).body;
  }, 180_000);

  afterAll(async () => {
    await daemon?.close();
    await demo?.sandbox.stop();
    rmSync(out, { recursive: true, force: true });
  }, 60_000);

  test("every metric a query reads is in the daemon's /metrics", () => {
    const exported = new Set(exposition.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0]));
    const missing: string[] = [];
    for (const q of [...queries.map((x) => x.expr), ...variableQueries]) {
      const names = metricNames(q);
      expect({ q, names: names.length > 0 }).toEqual({ q, names: true });
      for (const n of names) if (!exported.has(n)) missing.push(`${n} (in ${q})`);
    }
    expect(missing).toEqual([]);
    expect(exposition).toMatch(/^aegis_compliance_source_errors_total\{[^}]*source="logs"[^}]*\} [1-9]/m);
    // the daemon audited the deployment the demo built: the deployment variable finds it
    expect(exposition).toMatch(/^aegis_compliance_build_info\{deployment="[^"]+",version="[^"]+"\} 1$/m);
  });
});
