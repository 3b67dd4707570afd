import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderHtmlReport, reportView } from '../../src/outputs/html';
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
    expect(html).toContain('<th scope="row">rows</th><td>42</td>');
    // Nested evidence is one row, its value shown as compact JSON.
    expect(html).toContain(`<th scope="row">nested</th><td>${esc(JSON.stringify({ line: 3, fields: ['a', XSS_ATTR] }))}</td>`);
    expect(html).toContain(`<strong>Not evaluated:</strong> postgres: connection refused ${esc(XSS_SCRIPT)}`);
    expect(html).toContain("<strong>Skipped:</strong> source &#x27;secrets.vault&#x27; is not configured");
    expect(html).toContain('gathered before the check stopped');
    // Without a base URL a runbook is a path, not a link.
    expect(html).toContain('<strong>Runbook:</strong> <code>docs/runbooks/historical-keys.md</code>');
    expect(html).not.toMatch(/<a href="docs\//);
  });

  it('links runbooks only through an http(s) base URL', () => {
    const linked = renderHtmlReport(report, { metas: sampleMetas(), runbookBaseUrl: 'https://git.example.com/aegis/blob/main/' });
    expect(linked).toContain('<a href="https://git.example.com/aegis/blob/main/docs/runbooks/historical-keys.md">docs/runbooks/historical-keys.md</a>');
    const js = renderHtmlReport(report, { metas: sampleMetas(), runbookBaseUrl: 'javascript:alert(1)//' });
    expect(js).not.toContain('javascript:');
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
    expect(v.diff.open.map((f) => f.resource)).toEqual([`fingerprint=${LONG_TOKEN}`]);
    expect(v.diff.resolved.map((f) => f.resource)).toEqual(['fingerprint=sha256:gone']);
    // receipt-chain errored this run: its old finding is not "resolved".
    expect(v.diff.unverified.map((f) => f.resource)).toEqual(['row=3']);
    expect(v.diff.new).toHaveLength(7);
    const page = renderHtmlReport(report, { previous: prev });
    expect(page).toContain('Compared with run <code>run-0001</code>, finished 2026-11-21 10:00:05 UTC');
    expect(page).toContain('<strong>7 new</strong>, 1 resolved, 1 still open, 1 not re-checked.');
    expect(page).toContain('<h3 id="changes-resolved">Resolved (1)</h3>');
    expect(html).toContain('No previous run of this deployment is recorded');
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
  it('renders 10 000 findings in bounded time', () => {
    const big = buildReport([
      result('receipt-chain', 'Receipt chain verifies', 'critical', 'fail',
        Array.from({ length: 10_000 }, (_, i) => finding('receipt-chain', 'critical', `row=${i}`, `Row ${i} does not verify.`, { evidence: { row: i, hash: 'a'.repeat(64) } }))),
    ]);
    renderHtmlReport(buildReport([])); // templates compiled
    const t0 = Date.now();
    const out = renderHtmlReport(big);
    const ms = Date.now() - t0;
    expect(out.match(/<article class="finding/g)).toHaveLength(10_000);
    expect(ms).toBeLessThan(20_000);
  });
});
