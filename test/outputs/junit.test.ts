import { formatJunit, xmlEscape } from '../../src/outputs/junit';
import { all, parseXml } from './xml';
import { XSS_IMG, XSS_SCRIPT, buildReport, finding, result, sampleReport } from './fixtures';

describe('JUnit XML', () => {
  const report = sampleReport();
  const xml = formatJunit(report);
  const root = parseXml(xml);

  it('is well-formed, with one testsuite and a testcase per check', () => {
    expect(root.name).toBe('testsuites');
    const suites = all(root, 'testsuite');
    expect(suites).toHaveLength(1);
    const cases = all(root, 'testcase');
    expect(cases.map((c) => c.attrs.classname)).toEqual(report.results.map((r) => r.check));
    expect(cases.map((c) => c.attrs.name)).toEqual(report.results.map((r) => r.title));
    expect(suites[0].attrs).toMatchObject({ tests: '9', failures: '3', errors: '1', skipped: '1' });
  });

  it('keeps failure, error and skipped distinct, with counts that agree with the report', () => {
    expect(all(root, 'failure')).toHaveLength(report.summary.fail);
    expect(all(root, 'error')).toHaveLength(report.summary.error);
    expect(all(root, 'skipped')).toHaveLength(report.summary.skipped);
    const byCheck = new Map(all(root, 'testcase').map((c) => [c.attrs.classname, c]));
    const ssm = byCheck.get('ssm-persisted-secrets')!;
    expect(ssm.children[0].name).toBe('failure');
    expect(ssm.children[0].attrs.message).toBe('2 findings');
    expect(ssm.children[0].text).toContain(`parameter=${XSS_IMG}`);
    const err = byCheck.get('receipt-chain')!;
    expect(err.children[0]).toMatchObject({ name: 'error', attrs: { message: `postgres: connection refused ${XSS_SCRIPT}` } });
    expect(byCheck.get('runtime-secrets-present')!.children[0]).toMatchObject({ name: 'skipped', attrs: { message: "source 'secrets.vault' is not configured" } });
    expect(byCheck.get('auth-failure-spike')!.children).toHaveLength(0);
  });

  it('shows waived findings as waived, not as failures', () => {
    const tc = all(root, 'testcase').find((c) => c.attrs.classname === 'credential-age')!;
    expect(all(tc, 'failure')).toHaveLength(0);
    const out = all(tc, 'system-out')[0];
    expect(out.text).toContain('api_key=legacy-partner');
    expect(out.text).toContain('waived by jane.doe');
  });

  it('escapes markup and drops characters XML cannot carry', () => {
    expect(xml).not.toContain('<script>');
    expect(xml).not.toContain('<img');
    expect(xmlEscape('a\u0000b\u001bc & <d> "e" \'f\'')).toBe('a\uFFFDb\uFFFDc &amp; &lt;d&gt; &quot;e&quot; &apos;f&apos;');
    const weird = buildReport([
      result('x-check', 'Title with\nnewline & "quotes"', 'low', 'fail', [finding('x-check', 'low', 'k=v\u0001', 'bad \u0007 bell ]]> end')]),
    ]);
    const parsed = parseXml(formatJunit(weird));
    const tc = all(parsed, 'testcase')[0];
    expect(tc.attrs.name).toBe('Title with\nnewline & "quotes"');
    expect(all(tc, 'failure')[0].text).toContain('bad \uFFFD bell ]]> end');
  });
});
