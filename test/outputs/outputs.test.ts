import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonReport, writeOutputs } from '../../src/outputs';
import { FINGERPRINT_KEY } from '../../src/outputs/sarif';
import { all, parseXml } from './xml';
import { sampleMetas, sampleReport } from './fixtures';

describe('writeOutputs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aegis-outputs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the five files, and they agree with each other', async () => {
    const report = sampleReport();
    const { files } = await writeOutputs(report, { dir, metas: sampleMetas(), now: new Date('2026-11-22T12:00:00Z') });
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['report.json', 'report.html', 'checklist.html', 'report.junit.xml', 'report.sarif']);
    expect(readdirSync(dir).sort()).toEqual(['checklist.html', 'report.html', 'report.json', 'report.junit.xml', 'report.sarif']);

    const json = await readJsonReport(join(dir, 'report.json'));
    const findings = json.results.flatMap((r) => r.findings);
    const waived = findings.filter((f) => f.waived);
    const failing = findings.filter((f) => !f.waived && f.severity !== 'info');

    // HTML: the status cards, one article per finding, the waived ones marked.
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    for (const [status, n] of Object.entries(json.summary)) expect(html).toContain(`data-status="${status}"><span class="n">${n}</span>`);
    expect(html.match(/<article class="finding /g)).toHaveLength(findings.length);
    expect(html.match(/<article class="finding [^"]*is-waived/g)).toHaveLength(waived.length);

    // JUnit: same checks and statuses; failure messages count the failing findings.
    const junit = parseXml(readFileSync(join(dir, 'report.junit.xml'), 'utf8'));
    const suite = all(junit, 'testsuite')[0];
    expect(suite.attrs).toMatchObject({ tests: String(json.results.length), failures: String(json.summary.fail), errors: String(json.summary.error), skipped: String(json.summary.skipped) });
    const failureCounts = all(junit, 'failure').map((f) => Number(f.attrs.message.split(' ')[0]));
    const failingInFailedChecks = json.results.filter((r) => r.status === 'fail').flatMap((r) => r.findings).filter((f) => !f.waived && f.severity !== 'info');
    expect(failureCounts.reduce((a, b) => a + b, 0)).toBe(failingInFailedChecks.length);

    // SARIF: a result per finding with the same ids; suppressions exactly on the waived ones.
    const sarif = JSON.parse(readFileSync(join(dir, 'report.sarif'), 'utf8'));
    const results = sarif.runs[0].results as { partialFingerprints: Record<string, string>; suppressions?: unknown[] }[];
    expect(results.map((r) => r.partialFingerprints[FINGERPRINT_KEY]).sort()).toEqual(findings.map((f) => f.id).sort());
    expect(results.filter((r) => r.suppressions).map((r) => r.partialFingerprints[FINGERPRINT_KEY])).toEqual(waived.map((f) => f.id));
    expect(sarif.runs[0].tool.driver.rules).toHaveLength(json.results.length);

    // Checklist: every failing finding of a check that an item names shows up there.
    const checklist = readFileSync(join(dir, 'checklist.html'), 'utf8');
    expect(checklist).toContain(`<code>${json.runId}</code>`);
    expect(failing.length).toBeGreaterThan(0);
    expect(checklist).toContain('api_key&#x3D;legacy-partner</code>: API key legacy-partner is 400 days old. <span class="muted">(waived by');
  });

  it('writes only the selected formats', async () => {
    const { files } = await writeOutputs(sampleReport(), { dir, formats: ['junit', 'json'] });
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['report.json', 'report.junit.xml']);
    expect(readdirSync(dir).sort()).toEqual(['report.json', 'report.junit.xml']);
  });
});
