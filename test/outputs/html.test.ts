import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { registry } from '../../checks';
import { renderHtmlReport, reportView, writeHtmlReport } from '../../src/outputs/html';
import { metasFromChecks } from '../../src/outputs/metas';
import { TEMPLATES_DIR } from '../../src/outputs/render';
import { EXPIRED_WAIVER, LONG_TOKEN, XSS_ATTR, XSS_IMG, XSS_SCRIPT, buildReport, finding, result, sampleMetas, sampleReport } from './fixtures';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;').replace(/`/g, '&#x60;').replace(/=/g, '&#x3D;');

function templateFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? templateFiles(join(dir, e.name)) : e.name.endsWith('.hbs') ? [join(dir, e.name)] : []));
}

describe('HTML compliance report', () => {
  const report = sampleReport();
  const html = renderHtmlReport(report, { metas: sampleMetas() });

  it('has the header: deployment, times, tool version, config digest, run id', () => {
    expect(html).toContain('<h1>Compliance report: <span class="deployment">prod</span></h1>');
    expect(html).toContain('<dd>2026-11-22 10:00:00 UTC</dd>');
    expect(html).toContain('<dd>2026-11-22 10:00:05 UTC</dd>');
    expect(html).toContain('<dd>aegis-audit 0.1.0</dd>');
    expect(html).toContain(`<code>sha256:${'c'.repeat(64)}</code>`);
    expect(html).toContain('<code>run-0002</code>');
    expect(html).toMatch(/<div class="overall overall-fail" id="overall">FAIL<\/div>/);
  });

  it('summarises by status and by severity, with the report counts', () => {
    for (const [status, n] of Object.entries(report.summary)) {
      expect(html).toContain(`<div class="card status-${status}" data-status="${status}"><span class="n">${n}</span>${status}</div>`);
    }
    // critical: 4 findings (none waived); medium: 1, waived; info: 1.
    expect(html).toMatch(/<tr data-severity="critical"><td>.*?<\/td><td>4<\/td><td>0<\/td><td>4<\/td><\/tr>/);
    expect(html).toMatch(/<tr data-severity="medium"><td>.*?<\/td><td>0<\/td><td>1<\/td><td>1<\/td><\/tr>/);
    const v = reportView(report);
    expect(v.totals).toEqual({ findings: 8, open: 6, waived: 1, notes: 1 });
  });

  it('has a section per check with description, findings, evidence table, remediation and reasons', () => {
    for (const r of report.results) expect(html).toContain(`id="check-${r.check}"`);
    expect(html).toContain('What historical-keys proves');
    expect(html).toContain('<p class="remediation"><strong>Remediation:</strong> Fix historical-keys.</p>');
    expect(html).toContain('<th>rows</th><td>42</td>');
    // A nested object is its own small key/value table (a list inside it, comma-separated).
    expect(html).toContain(`<th>nested</th><td><table class="kv"><tbody><tr><th>fields</th><td>a, ${esc(XSS_ATTR)}</td></tr><tr><th>line</th><td>3</td></tr></tbody></table></td>`);
    expect(html).toContain(`<strong>Not evaluated:</strong> postgres: connection refused ${esc(XSS_SCRIPT)}`);
    expect(html).toContain("<strong>Skipped:</strong> source &#x27;secrets.vault&#x27; is not configured");
    expect(html).toContain('gathered before the check stopped');
    // Rendered for no folder and with no base URL, a runbook is a path, not a link.
    expect(html).toContain('<strong>Runbook:</strong> <code>docs/runbooks/historical-keys.md</code>');
    expect(html).not.toMatch(/<a href="docs\//);
  });

  it('links runbooks through an http(s) base URL, never another scheme', () => {
    const linked = renderHtmlReport(report, { metas: sampleMetas(), runbookBaseUrl: 'https://git.example.com/aegis/blob/main/' });
    expect(linked).toContain('<a href="https://git.example.com/aegis/blob/main/docs/runbooks/historical-keys.md">docs/runbooks/historical-keys.md</a>');
    const js = renderHtmlReport(report, { metas: sampleMetas(), runbookBaseUrl: 'javascript:alert(1)//' });
    expect(js).not.toContain('javascript:');
  });

  it('written to a folder, links each runbook relative to it, so the link opens the file from the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'html-links-'));
    const metas = metasFromChecks(registry.values());
    const real = buildReport([result('historical-keys', 'Historical keys', 'critical', 'fail', [finding('historical-keys', 'critical', 'fingerprint=sha256:x', 'Orphaned.')])]);
    const page = readFileSync(await writeHtmlReport(real, join(dir, 'reports', 'nested'), { metas }), 'utf8');
    const hrefs = [...page.matchAll(/<a href="([^"#][^"]*)">/g)].map((m) => m[1]);
    expect(hrefs.length).toBeGreaterThanOrEqual(2); // the check's runbook, and the fix-first box's
    for (const h of hrefs) {
      expect(h).not.toMatch(/^[a-z]+:/); // relative, no scheme
      expect(readFileSync(resolve(dir, 'reports', 'nested', decodeURIComponent(h)), 'utf8')).toMatch(/^# historical-keys/);
    }
    // A runbook that is not on this machine is shown, not linked to nowhere.
    const missing = new Map([['historical-keys', { ...metas.get('historical-keys')!, runbook: 'docs/runbooks/not-shipped.md' }]]);
    expect(renderHtmlReport(real, { metas: missing, reportDir: dir })).toContain('<code>docs/runbooks/not-shipped.md</code>');
  });

  it('shows waived findings as waived with approver, ticket and expiry, and lists expired waivers', () => {
    expect(html).toContain('<span class="badge waived">waived</span>');
    expect(html).toContain(`Waived by <strong>${esc(`jane.doe ${XSS_IMG}`)}</strong>, ticket <code>SEC-1234</code>, until 2027-01-31 23:59:59 UTC`);
    expect(html).toContain('<h3>Waived findings (1)</h3>');
    expect(html).toContain('<h3 id="expired-waivers">Expired waivers (1)</h3>');
    expect(html).toContain(`<td><code>${EXPIRED_WAIVER.check}</code></td><td><code>${esc(EXPIRED_WAIVER.resource)}</code></td><td>bob</td><td><code>SEC-99</code></td><td>2026-01-01 00:00:00 UTC</td>`);
  });

  it('shows what changed since the previous run by stable finding id', () => {
    const prev = buildReport(
      [
        result('historical-keys', 'Historical signing keys are recorded after rotation', 'critical', 'fail', [
          finding('historical-keys', 'critical', `fingerprint=${LONG_TOKEN}`, 'old text, same id'),
          finding('historical-keys', 'critical', 'fingerprint=sha256:gone', 'Fixed since.'),
        ]),
        result('receipt-chain', 'Receipt hash chain and signatures verify', 'critical', 'fail', [finding('receipt-chain', 'critical', 'row=3', 'Row 3 broke.')]),
      ],
      { runId: 'run-0001', finishedAt: '2026-11-21T10:00:05.000Z' },
    );
    const v = reportView(report, { previous: prev });
    expect(v.diff.open.total).toBe(1);
    expect(v.diff.resolved.rows.map((f) => f.resource)).toEqual(['fingerprint=sha256:gone']);
    // receipt-chain errored this run: its old finding is not "resolved".
    expect(v.diff.unverified.rows.map((f) => f.resource)).toEqual(['row=3']);
    expect(v.diff.new.total).toBe(7);
    expect(v.diff.byCheck.find((c) => c.check === 'historical-keys')).toEqual({ check: 'historical-keys', new: 0, resolved: 1, open: 1, unverified: 0 });
    const page = renderHtmlReport(report, { previous: prev });
    expect(page).toContain('Compared with run <code>run-0001</code>, finished 2026-11-21 10:00:05 UTC');
    expect(page).toContain('<strong>7 new</strong>, 1 resolved, 1 still open, 1 not re-checked.');
    expect(page).toMatch(/<details class="changes-list" id="changes-resolved" open>\s*<summary><h3>Resolved \(1\)<\/h3><\/summary>/);
    // New findings are marked where they stand; the still-open one is not.
    expect(page.match(/<span class="badge new">new<\/span>/g)).toHaveLength(7);
    expect(page).not.toMatch(new RegExp(`<span class="badge new">new</span> <code class="resource">fingerprint&#x3D;${LONG_TOKEN.slice(0, 20)}`));
    expect(html).toContain('No previous run of this deployment is recorded');
    expect(html).not.toContain('<span class="badge new">');
  });

  it('renders hostile strings as text in every field', () => {
    for (const hostile of [XSS_SCRIPT, XSS_IMG, XSS_ATTR]) {
      expect(html).not.toContain(hostile);
      expect(html).toContain(esc(hostile));
    }
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it('is self-contained: inline CSS, no scripts, no external assets, a print stylesheet', () => {
    expect(html).toMatch(/<style>[\s\S]*@media print[\s\S]*<\/style>/);
    expect(html).not.toMatch(/<link\b|<script\b|<iframe\b|<object\b|\bsrc=|@import|url\(/i);
    expect(html).toContain("Content-Security-Policy\" content=\"default-src 'none'");
  });

  it('templates never use triple-stash or unescaped blocks', () => {
    const files = templateFiles(TEMPLATES_DIR);
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const src = readFileSync(f, 'utf8');
      expect({ f, hit: /\{\{\{|\{\{&/.test(src) }).toEqual({ f, hit: false });
    }
  });

  it('renders a run with no checks and one with only passes', () => {
    expect(renderHtmlReport(buildReport([]))).toContain('>NO CHECKS<');
    const ok = renderHtmlReport(buildReport([result('auth-failure-spike', 'Auth failures stay low', 'high', 'pass')]));
    expect(ok).toContain('id="overall">PASS<');
    expect(ok).toContain('<p class="muted">No findings.</p>');
  });

  // A functional bound only (the figure is bench/render-report.ts's): other suites share these cores.
  it('a 10 000-finding check renders in bounded time, its findings collapsed under one summary', () => {
    const big = buildReport([
      result('receipt-chain', 'Receipt chain verifies', 'critical', 'fail',
        Array.from({ length: 10_000 }, (_, i) => finding('receipt-chain', 'critical', `row=${i}`, `Row ${i} does not verify.`, { evidence: { row: i, hash: 'a'.repeat(64) } }))),
    ]);
    const t0 = Date.now();
    const out = renderHtmlReport(big);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(out.match(/<article class="finding/g)).toHaveLength(10_000);
    expect(out).toMatch(/<details class="findings">\s*<summary class="counts">10000 findings: 10000 open, 0 waived, 0 notes<\/summary>/);
    // Fix-first counts them as one entry.
    expect(out).toMatch(/<li class="fix sev-critical">[\s\S]*?× 10000[\s\S]*?row&#x3D;0<\/code> <span class="muted">and 9999 more<\/span>/);
  });
});

describe('what to fix first, severity ceilings, collapsing and charts', () => {
  const report = sampleReport();
  const metas = sampleMetas();
  const v = reportView(report, { metas });
  const html = renderHtmlReport(report, { metas });

  it('"fix these first" lists open critical then high findings by check, with count, one-line remediation and the check', () => {
    expect(v.fixFirst.items.map((i) => [i.severity, i.check, i.count])).toEqual([
      ['critical', 'historical-keys', 1],
      ['critical', 'receipt-chain', 1],
      ['critical', 'signing-key-source', 1],
      ['critical', 'ssm-persisted-secrets', 1],
      ['high', 'signing-key-source', 1],
      ['high', 'ssm-persisted-secrets', 1],
    ]);
    expect(v.fixFirst.items[0]).toMatchObject({ remediation: 'Fix historical-keys.', anchor: 'check-historical-keys', message: 'Rows signed by an old key have no historical key entry.' });
    // Waived and info findings never appear; the medium waived one and the info note are out.
    expect(v.fixFirst.total).toBe(6);
    expect(html).toMatch(/<section id="fix-first" class="fix-first">\s*<h2>Fix these first<\/h2>/);
    expect(html).toContain(`<a href="#check-signing-key-source">Signing keys are loaded from the environment</a>`);
    const calm = renderHtmlReport(buildReport([result('credential-age', 'Rotated', 'medium', 'fail', [finding('credential-age', 'medium', 'api_key=a', 'Old.')])]));
    expect(calm).toContain('<p class="all-clear">No open critical or high finding.</p>');
  });

  it('keeps the box to the first ten entries and says how many more there are', () => {
    const many = buildReport(
      Array.from({ length: 14 }, (_, c) =>
        result(`check-${String(c).padStart(2, '0')}`, `Check ${c} holds`, 'high', 'fail', [finding(`check-${String(c).padStart(2, '0')}`, 'high', 'x=1', 'Bad.'), finding(`check-${String(c).padStart(2, '0')}`, 'high', 'x=2', 'Bad.')]),
      ),
    );
    const mv = reportView(many);
    expect(mv.fixFirst.items).toHaveLength(10);
    expect(mv.fixFirst.hidden).toBe(8);
    expect(renderHtmlReport(many)).toContain('…and 8 more critical or high findings in the results below.');
  });

  it('explains that a check\'s severity is its ceiling, and says when the worst open finding is below it', () => {
    expect(html).toContain('<strong>Reading severities.</strong> The severity beside a check is its <em>ceiling</em>');
    const below = renderHtmlReport(buildReport([result('signing-key-source', 'Keys from env', 'critical', 'fail', [finding('signing-key-source', 'high', 'instance=a,key=root', 'PEM fallback.')])]));
    expect(below).toContain(`worst open finding <span class="badge sev-high">high</span>, below this check's critical ceiling`);
    expect(html).not.toContain("below this check's critical ceiling"); // sample checks hold a finding at their ceiling
  });

  it('collapses findings per check with native <details>: short lists with something open start expanded', () => {
    const sections = [...html.matchAll(/<section class="check [^"]*" id="(check-[^"]+)">([\s\S]*?)<\/section>/g)].map((m) => [m[1], (/<details class="findings"( open)?>/.exec(m[2]) ?? [])[1] ?? (m[2].includes('<details') ? 'closed' : 'none')]);
    expect(Object.fromEntries(sections)).toEqual({
      'check-signing-key-source': ' open',
      'check-historical-keys': ' open',
      'check-ssm-persisted-secrets': ' open',
      'check-receipt-chain': ' open',
      'check-runtime-secrets-present': 'none',
      'check-internal-secret-drift': 'closed', // only a note
      'check-credential-age': 'closed', // only a waived finding
      'check-auth-failure-spike': 'none',
      'check-vault-token-hygiene': 'none',
    });
    expect(html).not.toMatch(/<script/i);
  });

  it('draws findings by severity as an inline SVG of numbers only, and the trend when there are two runs or more', () => {
    const chart = /<figure class="chart" id="chart-severity">([\s\S]*?)<\/figure>/.exec(html)?.[1] ?? '';
    expect(chart.match(/<g data-severity="/g)).toHaveLength(5);
    expect(chart).toMatch(/<g data-severity="critical"><text[^>]*>critical<\/text><rect [^>]*><title>4 open critical<\/title>/);
    expect(chart).toContain('<title>1 waived medium</title>');
    expect(html).not.toContain('id="chart-trend"');
    const sev = (critical: number, high: number) => ({ critical, high, medium: 0, low: 0, info: 0 });
    const trend = [
      { runId: 'r1', finishedAt: '2026-11-20T10:00:00.000Z', open: sev(1, 1) },
      { runId: 'r2', finishedAt: '2026-11-21T10:00:00.000Z', open: sev(0, 0) },
      { runId: 'run-0002', finishedAt: report.finishedAt, open: sev(4, 2) },
    ];
    const withTrend = renderHtmlReport(report, { metas, trend });
    const t = /<figure class="chart" id="chart-trend">([\s\S]*?)<\/figure>/.exec(withTrend)?.[1] ?? '';
    expect(t.match(/<g class="run/g)).toHaveLength(3);
    expect(t).toContain('<title>2026-11-22 10:00:05 UTC (run run-0002): 6 open</title>');
    expect(t).toContain('<rect x="');
    expect(t).toContain('class="zero"'); // the clean run is drawn, as zero
    expect(t).toContain('Open findings over the last 3 runs: 6 now, +6 since the previous run');
    expect(renderHtmlReport(report, { metas, trend: trend.slice(2) })).not.toContain('id="chart-trend"');
  });

  it('evidence: scalars as text, lists as lists, flat objects as key/value tables, lists of flat objects as a grid, JSON only deeper', () => {
    const r = buildReport([
      result('receipt-chain', 'Chain verifies', 'critical', 'fail', [
        finding('receipt-chain', 'critical', 'row=1', 'Broken.', {
          evidence: {
            flag: true,
            ids: [1, 2, 3],
            problems: [{ kind: 'badSignature', detail: XSS_SCRIPT }, { kind: 'chainBreak' }],
            deep: { a: { b: 1 } },
            none: [],
          },
        }),
      ]),
    ]);
    const page = renderHtmlReport(r);
    expect(page).toContain('<tr><th>flag</th><td>true</td></tr>');
    expect(page).toContain('<tr><th>ids</th><td><ul class="values"><li>1</li><li>2</li><li>3</li></ul></td></tr>');
    expect(page).toContain(`<table class="grid"><thead><tr><th scope="col">detail</th><th scope="col">kind</th></tr></thead><tbody><tr><td>${esc(XSS_SCRIPT)}</td><td>badSignature</td></tr><tr><td></td><td>chainBreak</td></tr></tbody></table>`);
    expect(page).toContain(`<tr><th>deep</th><td><table class="kv"><tbody><tr><th>a</th><td>${esc(JSON.stringify({ b: 1 }))}</td></tr></tbody></table></td></tr>`);
    expect(page).toContain('<tr><th>none</th><td>(none)</td></tr>');
  });
});
