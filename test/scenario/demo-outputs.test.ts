/**
 * The demo's five files agree with each other: the same checks, statuses, counts and
 * findings in report.json, report.html, checklist.html, report.junit.xml and report.sarif.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../checks';
import { describeState, startDemo, type DemoResult } from '../../src/app/demo';
import { CHECKLIST } from '../../src/core/checklist';
import type { Report } from '../../src/core/types';
import { adminUrl } from '../helpers/pg';

let out: string;
let demo: DemoResult;
const read = (f: string) => readFileSync(join(out, f), 'utf8');

/** Item id → the status in that item's own heading: `<section … id="item-X"><h3>… <span class="item-status …">STATUS</span></h3>`. */
function itemStatuses(html: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /<section class="item item-([a-z-]+)" id="item-([^"]+)">\s*<h3>[^<]*<span class="item-status item-\1">([A-Z ]+)<\/span><\/h3>/g;
  for (const m of html.matchAll(re)) out.set(m[2], m[3]);
  return out;
}

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'demo-outputs-'));
  demo = await startDemo(registry, { out, rows: 400, violations: 'all', adminUrl: adminUrl() });
}, 120_000);

afterAll(async () => {
  await demo?.sandbox.stop();
  rmSync(out, { recursive: true, force: true });
});

test('the demo wrote all five files and found exactly the manifest', () => {
  expect(demo.files.map((f) => f.slice(out.length + 1)).sort()).toEqual(['checklist.html', 'report.html', 'report.json', 'report.junit.xml', 'report.sarif']);
  expect({ missed: demo.comparison.missed, extra: demo.comparison.extra }).toEqual({ missed: [], extra: [] });
});

test('JSON, JUnit, SARIF, HTML and the checklist agree on checks, statuses and findings', () => {
  const report = JSON.parse(read('report.json')) as Report;
  expect(report).toEqual(JSON.parse(JSON.stringify(demo.report)));
  const findings = report.results.flatMap((r) => r.findings);
  expect(findings.length).toBeGreaterThan(5);

  // JUnit: a testcase per check; failure / error / skipped as the statuses say.
  const junit = read('report.junit.xml');
  const count = (re: RegExp) => (junit.match(re) ?? []).length;
  expect(count(/<testcase\b/g)).toBe(report.results.length);
  expect(count(/<failure\b/g)).toBe(report.summary.fail);
  expect(count(/<error\b/g)).toBe(report.summary.error);
  expect(count(/<skipped\b/g)).toBe(report.summary.skipped);
  const suite = /<testsuite\b[^>]*>/.exec(junit)?.[0] ?? '';
  expect(suite).toContain(`tests="${report.results.length}"`);
  expect(suite).toContain(`failures="${report.summary.fail}"`);

  // SARIF: a rule per check, a result per finding carrying its stable id.
  const sarif = JSON.parse(read('report.sarif')) as {
    runs: { tool: { driver: { rules: { id: string }[] } }; results: { ruleId: string; partialFingerprints: Record<string, string> }[] }[];
  };
  const run = sarif.runs[0];
  expect(run.tool.driver.rules.map((r) => r.id).sort()).toEqual(report.results.map((r) => r.check).sort());
  expect(run.results).toHaveLength(findings.length);
  const sarifIds = run.results.map((r) => Object.values(r.partialFingerprints)[0]).sort();
  expect(sarifIds).toEqual(findings.map((f) => f.id).sort());

  // HTML: every check and every finding id is on the page.
  const html = read('report.html');
  for (const r of report.results) expect(html).toContain(r.check);
  for (const f of findings) expect(html).toContain(f.id);

  // Checklist: every item, and failing items wherever their checks failed.
  const checklist = read('checklist.html');
  for (const item of CHECKLIST) expect(checklist).toContain(`id="item-${item.id}"`);
  const failed = new Set(report.results.filter((r) => r.status === 'fail').map((r) => r.check));
  const failingItems = CHECKLIST.filter((i) => i.checks.some((c) => failed.has(c)));
  expect(failingItems.length).toBeGreaterThan(0);
  // Each item's own status, read from its own heading (not the next "FAIL" anywhere below it).
  const shown = itemStatuses(checklist);
  expect([...shown.keys()].sort()).toEqual(CHECKLIST.map((i) => i.id).sort());
  for (const item of CHECKLIST) {
    const expected = failingItems.includes(item) ? 'FAIL' : 'not FAIL';
    expect({ item: item.id, status: shown.get(item.id) === 'FAIL' ? 'FAIL' : 'not FAIL' }).toEqual({ item: item.id, status: expected });
  }
});

test('the demo says where its state is, and the checkpoint there is bound to the chain', () => {
  expect(demo.stateDir).toBe(join(out, 'sandbox', 'state'));
  const files = readdirSync(demo.stateDir);
  const checkpoint = files.map((f) => JSON.parse(readFileSync(join(demo.stateDir, f), 'utf8')) as { identity?: { database: string; table: string; firstRowId: number } }).find((v) => v.identity);
  expect(checkpoint?.identity).toMatchObject({ table: 'public.audit_log', firstRowId: 1, database: new URL(demo.sandbox.postgresUrl).pathname.slice(1) });
  expect(describeState(demo.stateDir)).toMatch(/^state: .*\n.*bound to the chain it verified[\s\S]*`run --full` verifies everything again/);
});
