import { CHECKLIST } from '../../src/core/checklist';
import type { Attestation } from '../../src/outputs/attestations';
import type { CheckResult } from '../../src/core/types';
import { evaluateChecklist, renderChecklist } from '../../src/outputs/checklist';
import { XSS_IMG, XSS_SCRIPT, buildReport, result, sampleMetas, sampleReport } from './fixtures';

const NOW = new Date('2026-11-22T12:00:00Z');
const att = (item: string, expires = '2027-01-01T00:00:00.000Z', by = 'jane'): Attestation => ({
  item,
  by,
  at: '2026-10-01T00:00:00.000Z',
  evidence: 'https://wiki.example.com/evidence',
  expires,
});

function statuses(attestations: Attestation[] = []) {
  return Object.fromEntries(evaluateChecklist(sampleReport(), { attestations, now: NOW }).items.map((i) => [i.item.id, i.status]));
}

describe('pre-pilot checklist', () => {
  it('judges every item from its checks', () => {
    expect(statuses()).toEqual({
      'secret-manager-configured': 'NOT EVALUATED', // runtime-secrets-present skipped
      'no-plaintext-secrets': 'FAIL', // ssm-persisted-secrets fails
      'strong-auth-enforced': 'NOT EVALUATED', // mtls-enforced, oidc-jwks not in the run
      'per-client-credentials': 'NOT EVALUATED',
      'rotation-procedures-tested': 'FAIL', // historical-keys fails (credential-age passes: its finding is waived)
      'class1-secrets-from-env': 'FAIL',
      'receipt-key-matches-rows': 'NOT EVALUATED', // receipt-chain error
      'historical-keys-recorded': 'FAIL',
      'internal-secret-identical': 'PASS', // an info note does not fail it
      'deploy-params-not-persisted': 'FAIL',
      'auth-failure-alerting': 'NOT EVALUATED', // checks pass, attestation missing
      'model-artifacts-signed': 'NOT EVALUATED', // model-artifact-signature not in the run
    });
  });

  it('an unexpired attestation covers checks that could not be evaluated, never failing ones', () => {
    const s = statuses([att('secret-manager-configured'), att('no-plaintext-secrets'), att('receipt-key-matches-rows')]);
    expect(s['secret-manager-configured']).toBe('ATTESTED');
    expect(s['receipt-key-matches-rows']).toBe('ATTESTED');
    expect(s['no-plaintext-secrets']).toBe('FAIL');
  });

  it('an item that needs an attestation passes with its checks and an unexpired one; expired counts as none', () => {
    expect(statuses([att('auth-failure-alerting')])['auth-failure-alerting']).toBe('PASS');
    const expired = evaluateChecklist(sampleReport(), { attestations: [att('auth-failure-alerting', '2026-11-01T00:00:00.000Z', 'old-bob')], now: NOW });
    const item = expired.items.find((i) => i.item.id === 'auth-failure-alerting')!;
    expect(item.status).toBe('NOT EVALUATED');
    expect(item.attestation).toMatchObject({ by: 'old-bob', expired: true });
    expect(item.reasons.join(' ')).toContain('the attestation by old-bob expired on 2026-11-01 00:00:00 UTC');
    // The unexpired one wins over an older expired one.
    const both = evaluateChecklist(sampleReport(), { attestations: [att('auth-failure-alerting', '2026-11-01T00:00:00.000Z', 'old'), att('auth-failure-alerting')], now: NOW });
    expect(both.items.find((i) => i.item.id === 'auth-failure-alerting')!.status).toBe('PASS');
  });

  it('an item with only an attestation is ATTESTED or NOT EVALUATED', () => {
    const items = [{ id: 'manual-only', title: 'Manual', checks: [], attestation: 'Someone looked', source: 'test' }];
    const report = buildReport([]);
    expect(evaluateChecklist(report, { items, now: NOW }).items[0].status).toBe('NOT EVALUATED');
    expect(evaluateChecklist(report, { items, attestations: [att('manual-only')], now: NOW }).items[0].status).toBe('ATTESTED');
  });

  it('all checks passing, no attestation needed → PASS; counts add up', () => {
    const report = buildReport(CHECKLIST.flatMap((i) => i.checks).filter((c, i, a) => a.indexOf(c) === i).map((c) => result(c, c, 'high', 'pass')));
    const r = evaluateChecklist(report, { now: NOW });
    // Without attestations, an item that needs one, or that no check evidences yet, cannot pass.
    // (An item whose attestation a check evidences needs none once that check ran.)
    const unprovable = CHECKLIST.filter((i) => (i.attestation && !i.attestationEvidencedBy) || i.checks.length === 0).length;
    expect(r.counts).toEqual({ PASS: CHECKLIST.length - unprovable, FAIL: 0, 'NOT EVALUATED': unprovable, ATTESTED: 0 });
  });

  describe('an attestation a check can evidence (no-plaintext-secrets and repo-secret-scan)', () => {
    const item = CHECKLIST.find((i) => i.id === 'no-plaintext-secrets')!;
    const others = item.checks.filter((c) => c !== 'repo-secret-scan');
    const judge = (scan: CheckResult['status'] | 'absent', attestations: Attestation[] = []) => {
      const results = [...others.map((c) => result(c, c, 'high', 'pass')), ...(scan === 'absent' ? [] : [result('repo-secret-scan', 'repo scan', 'critical', scan, [], scan === 'error' ? 'repo: root aegis is not a directory' : null)])];
      return evaluateChecklist(buildReport(results), { attestations, now: NOW }).items.find((i) => i.item.id === item.id)!;
    };

    it('is declared so: the check is among the item\'s checks and evidences its attestation', () => {
      expect(item.attestationEvidencedBy).toEqual(['repo-secret-scan']);
      expect(item.checks).toContain('repo-secret-scan');
    });

    it('the check ran and passed: PASS without an attestation, and the reason says none is needed', () => {
      const r = judge('pass');
      expect(r.status).toBe('PASS');
      expect(r.reasons).toEqual(['no attestation needed: repo-secret-scan evidenced "Repository secret scan (detect-secrets baseline reviewed) is clean"']);
    });

    it('the check ran and failed: FAIL, and an attestation does not outweigh it', () => {
      expect(judge('fail').status).toBe('FAIL');
      expect(judge('fail', [att('no-plaintext-secrets')]).status).toBe('FAIL');
    });

    it.each(['skipped', 'absent'] as const)('the check %s (not configured, or not part of the run): the attestation is still required, and stands in for it', (status) => {
      const without = judge(status);
      expect(without.status).toBe('NOT EVALUATED');
      expect(without.reasons.join(' ')).toMatch(
        new RegExp(`needs an attestation: Repository secret scan \\(detect-secrets baseline reviewed\\) is clean \\(repo-secret-scan ${status === 'skipped' ? 'was skipped' : 'was not part of this run'}, so it cannot evidence this\\); no attestation is recorded`),
      );
      const withIt = judge(status, [att('no-plaintext-secrets')]);
      expect(withIt.status).toBe('PASS');
      expect(withIt.reasons.join(' ')).toContain('the attestation of jane stands in for repo-secret-scan');
      expect(judge(status, [att('no-plaintext-secrets', '2026-11-01T00:00:00.000Z')]).status).toBe('NOT EVALUATED');
    });

    it('the check errored: not evaluated (an attestation covers it as for any check that could not be evaluated)', () => {
      expect(judge('error').status).toBe('NOT EVALUATED');
      expect(judge('error', [att('no-plaintext-secrets')]).status).toBe('ATTESTED');
    });

    it('the page says when the attestation is needed', () => {
      const html = renderChecklist(buildReport(others.map((c) => result(c, c, 'high', 'pass'))), { now: NOW });
      expect(html).toContain('<strong>Attestation required:</strong> Repository secret scan (detect-secrets baseline reviewed) is clean <span class="muted">— only when repo-secret-scan did not run');
    });
  });

  it('an item no check evidences and no attestation covers is NOT EVALUATED, never PASS', () => {
    const items = [{ id: 'unproven', title: 'Nothing proves it', checks: [], source: 'test' }];
    expect(evaluateChecklist(buildReport([]), { items, now: NOW }).items[0].status).toBe('NOT EVALUATED');
  });

  it('renders each item with its status, checks, findings and attestation, escaping everything', () => {
    const html = renderChecklist(sampleReport(), {
      attestations: [att('auth-failure-alerting', '2027-01-01T00:00:00.000Z', `mallory ${XSS_IMG}`), { ...att('per-client-credentials'), evidence: 'https://x.example/"><script>' }],
      now: NOW,
      metas: sampleMetas(),
    });
    expect(html).toContain('id="overall">FAIL<');
    expect(html).toContain('<h3>11. Alerting on auth failures and missing secrets <span class="item-status item-pass">PASS</span></h3>');
    expect(html).toContain('<h3>1. Secret manager configured and readable by the runtime <span class="item-status item-not-evaluated">NOT EVALUATED</span></h3>');
    expect(html).toContain('<h3>4. Per-client credentials and enrollment list present <span class="item-status item-attested">ATTESTED</span></h3>');
    expect(html).toContain('<div class="card" data-status="fail"><span class="n item-fail">5</span>FAIL</div>');
    expect(html).toContain('api_key&#x3D;legacy-partner</code>: API key legacy-partner is 400 days old. <span class="muted">(waived by jane.doe');
    expect(html).toContain(`by <strong>mallory ${XSS_IMG.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/=/g, '&#x3D;')}</strong>`);
    expect(html).not.toContain(XSS_SCRIPT);
    expect(html).not.toMatch(/<script|<img/i);
    // URL() percent-encodes the quote and brackets: the href cannot break out of its attribute.
    expect(html).toContain('<a href="https://x.example/%22%3E%3Cscript%3E">');
  });
});
