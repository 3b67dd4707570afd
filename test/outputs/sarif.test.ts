import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { FINGERPRINT_KEY, buildSarif, formatSarif, sarifLevel } from '../../src/outputs/sarif';
import { XSS_SCRIPT, sampleMetas, sampleReport } from './fixtures';

function validator() {
  const schema = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'sarif-schema-2.1.0.json'), 'utf8')) as Record<string, unknown>;
  // Draft-04 → what ajv's default draft-07 reads: `id` became `$id`; nothing else used here changed.
  schema.$id = schema.id;
  delete schema.id;
  delete schema.$schema;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv.compile(schema);
}

describe('SARIF 2.1.0', () => {
  const validate = validator();
  const report = sampleReport();
  const sarif = JSON.parse(formatSarif(report, { metas: sampleMetas(), runbookBaseUrl: 'https://git.example.com/aegis-audit/blob/main/' }));

  it('validates against the SARIF 2.1.0 schema', () => {
    const ok = validate(sarif);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema really rejects bad logs (the validator is not vacuous)', () => {
    const bad = structuredClone(sarif);
    bad.runs[0].results[0].level = 'critical';
    expect(validate(bad)).toBe(false);
    const bad2 = structuredClone(sarif);
    delete bad2.runs[0].tool.driver.name;
    expect(validate(bad2)).toBe(false);
  });

  it('has one rule per check with title, description, runbook link, level and security-severity', () => {
    const rules = sarif.runs[0].tool.driver.rules;
    expect(rules.map((r: { id: string }) => r.id)).toEqual(report.results.map((r) => r.check));
    const hk = rules.find((r: { id: string }) => r.id === 'historical-keys');
    expect(hk).toMatchObject({
      name: 'historical-keys',
      shortDescription: { text: 'Historical signing keys are recorded after rotation' },
      fullDescription: { text: 'What historical-keys proves' },
      helpUri: 'https://git.example.com/aegis-audit/blob/main/docs/runbooks/historical-keys.md',
      defaultConfiguration: { level: 'error' },
      properties: { 'security-severity': '9.5' },
    });
    expect(rules.find((r: { id: string }) => r.id === 'credential-age').defaultConfiguration.level).toBe('warning');
  });

  it('leaves helpUri out when the runbook is only a repository path', () => {
    const plain = buildSarif(report, { metas: sampleMetas() });
    const rule = plain.runs[0].tool.driver.rules[0];
    expect(rule).not.toHaveProperty('helpUri');
    expect(rule.help?.text).toContain('docs/runbooks/');
    expect(validate(JSON.parse(JSON.stringify(plain)))).toBe(true);
  });

  it('has a result per finding: level from severity, stable fingerprint, resource as logical location', () => {
    const findings = report.results.flatMap((r) => r.findings);
    const results = sarif.runs[0].results;
    expect(results).toHaveLength(findings.length);
    for (const [i, f] of findings.entries()) {
      expect(results[i].ruleId).toBe(f.check);
      expect(results[i].level).toBe(sarifLevel(f.severity));
      expect(results[i].partialFingerprints[FINGERPRINT_KEY]).toBe(f.id);
      expect(results[i].locations[0].logicalLocations[0].name).toBe(f.resource);
      expect(results[i].message.text).toBe(f.message);
    }
    expect(['critical', 'high', 'medium', 'low', 'info'].map((s) => sarifLevel(s as never))).toEqual(['error', 'error', 'warning', 'note', 'note']);
  });

  it('marks waived findings with an accepted external suppression', () => {
    const waived = sarif.runs[0].results.filter((r: { suppressions?: unknown[] }) => r.suppressions);
    expect(waived).toHaveLength(1);
    expect(waived[0].suppressions[0]).toMatchObject({ kind: 'external', status: 'accepted', properties: { ticket: 'SEC-1234' } });
    expect(waived[0].suppressions[0].justification).toContain(XSS_SCRIPT); // JSON carries text as text
  });

  it('reports checks that could not be evaluated as tool notifications', () => {
    const inv = sarif.runs[0].invocations[0];
    expect(inv.executionSuccessful).toBe(false);
    expect(inv.toolExecutionNotifications.map((n: { associatedRule: { id: string }; level: string }) => [n.associatedRule.id, n.level])).toEqual([
      ['receipt-chain', 'error'],
      ['runtime-secrets-present', 'note'],
    ]);
  });
});
