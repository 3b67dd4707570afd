/**
 * Hand-built reports for the output tests, the browser tests and the render benchmark.
 * Hostile strings sit in every free-text field a deployment can influence.
 */
import { findingId } from '../../src/core/finding';
import type { CheckResult, Finding, Report, Severity, Waiver } from '../../src/core/types';
import { summarize } from '../../src/core/report';
import type { CheckMetaInfo } from '../../src/outputs/metas';

export const XSS_SCRIPT = '<script>window.__xss_script=1;alert(1)</script>';
export const XSS_IMG = '"><img src=x onerror="window.__xss_img=1;alert(2)">';
export const XSS_ATTR = "' onmouseover='window.__xss_attr=1' x='";
export const LONG_TOKEN = 'sha256:' + 'f'.repeat(64) + 'a'.repeat(300);

export function finding(check: string, severity: Severity, resource: string, message: string, extra: Partial<Finding> = {}): Finding {
  return {
    id: findingId(check, resource),
    check,
    severity,
    resource,
    messageId: 'm',
    message,
    evidence: {},
    remediation: `Fix ${check}.`,
    ...extra,
  };
}

export function result(check: string, title: string, severity: Severity, status: CheckResult['status'], findings: Finding[] = [], error: string | null = null): CheckResult {
  return { check, title, severity, status, durationMs: 12, error, findings, startedAt: '2026-11-22T10:00:00.000Z' };
}

export const WAIVER: Waiver = {
  check: 'credential-age',
  resource: 'api_key=legacy-*',
  justification: `Legacy partner key ${XSS_SCRIPT}`,
  approver: `jane.doe ${XSS_IMG}`,
  ticket: 'SEC-1234',
  expires: '2027-01-31T23:59:59.999Z',
};

export const EXPIRED_WAIVER: Waiver = {
  check: 'internal-secret-drift',
  resource: 'secret=INTERNAL_SECRET',
  justification: 'Rotation in progress',
  approver: 'bob',
  ticket: 'SEC-99',
  expires: '2026-01-01T00:00:00.000Z',
};

export function buildReport(results: CheckResult[], over: Partial<Report> = {}): Report {
  return {
    schemaVersion: 1,
    tool: { name: 'aegis-audit', version: '0.1.0' },
    deployment: 'prod',
    runId: 'run-0002',
    configDigest: 'sha256:' + 'c'.repeat(64),
    startedAt: '2026-11-22T10:00:00.000Z',
    finishedAt: '2026-11-22T10:00:05.000Z',
    summary: summarize(results),
    results,
    ...over,
  };
}

/**
 * Nine checks: 3 fail, 1 error (with a partial finding), 1 skipped, 4 pass (one of them
 * passing only because its one finding is waived, one with an info note).
 */
export function sampleReport(over: Partial<Report> = {}): Report {
  const results: CheckResult[] = [
    result('signing-key-source', 'Signing keys are loaded from the environment', 'critical', 'fail', [
      finding('signing-key-source', 'critical', `instance=${XSS_SCRIPT},key=receipt`, `Instance ${XSS_SCRIPT} generated its receipt key in memory.`, {
        evidence: { instance: XSS_IMG, source: 'generated', ts: '2026-11-22T09:00:00.000Z', nested: { line: 3, fields: ['a', XSS_ATTR] } },
      }),
      finding('signing-key-source', 'high', 'instance=audit-2,key=root', 'Instance audit-2 loaded the root key from the PEM fallback.', {
        evidence: { instance: 'audit-2', source: 'file', long: LONG_TOKEN },
      }),
    ]),
    result('historical-keys', 'Historical signing keys are recorded after rotation', 'critical', 'fail', [
      finding('historical-keys', 'critical', `fingerprint=${LONG_TOKEN}`, 'Rows signed by an old key have no historical key entry.', {
        evidence: { fingerprint: LONG_TOKEN, rows: 42 },
      }),
    ]),
    result('ssm-persisted-secrets', 'Deploy commands carry no literal secret values', 'critical', 'fail', [
      finding('ssm-persisted-secrets', 'critical', `command=cmd-1,parameter=${XSS_IMG}`, `Parameter ${XSS_IMG} of command cmd-1 holds a literal secret.`),
      finding('ssm-persisted-secrets', 'high', 'parameter=/aegis/prod/gateway/JWT_SECRET_KEY', 'Parameter is a String, not a SecureString.'),
    ]),
    result('receipt-chain', 'Receipt hash chain and signatures verify', 'critical', 'error', [
      finding('receipt-chain', 'critical', 'row=17', 'Row 17 does not chain to row 16.'),
    ], `postgres: connection refused ${XSS_SCRIPT}`),
    result('runtime-secrets-present', 'Required runtime secrets exist in Vault', 'critical', 'skipped', [], "source 'secrets.vault' is not configured"),
    result('credential-age', 'API keys and secrets are rotated on schedule', 'medium', 'pass', [
      finding('credential-age', 'medium', 'api_key=legacy-partner', 'API key legacy-partner is 400 days old.', { waived: WAIVER }),
    ]),
    result('internal-secret-drift', 'INTERNAL_SECRET is identical across services', 'high', 'pass', [
      finding('internal-secret-drift', 'info', 'service=gateway,secret=INTERNAL_SECRET_PREVIOUS', 'An INTERNAL_SECRET_PREVIOUS overlap is open (2 days).'),
    ]),
    result('auth-failure-spike', 'Authentication failures stay under the limit and baseline', 'high', 'pass'),
    result('vault-token-hygiene', 'Vault tokens are not root, expire and are renewable', 'high', 'pass'),
  ];
  return buildReport(results, { expiredWaivers: [EXPIRED_WAIVER], ...over });
}

export function sampleMetas(): Map<string, CheckMetaInfo> {
  const m = new Map<string, CheckMetaInfo>();
  for (const r of sampleReport().results) {
    m.set(r.check, {
      description: `What ${r.check} proves ${r.check === 'signing-key-source' ? XSS_SCRIPT : ''}`.trim(),
      runbook: `docs/runbooks/${r.check}.md`,
      remediation: `Fix ${r.check}.`,
      checklist: [],
    });
  }
  return m;
}

/** A report with `n` findings spread over ten checks (for the benchmark and the overflow test). */
export function syntheticReport(n: number): Report {
  const checks = 10;
  const results: CheckResult[] = [];
  const severities: Severity[] = ['critical', 'high', 'medium', 'low', 'info'];
  for (let c = 0; c < checks; c++) {
    const check = `synthetic-check-${c}`;
    const findings: Finding[] = [];
    for (let i = c; i < n; i += checks) {
      const resource = i % 97 === 0 ? `row=${i},note=${XSS_IMG}` : `row=${i},table=audit_log`;
      findings.push(
        finding(check, severities[i % severities.length], resource, `Row ${i} does not verify under key sha256:${(i * 2654435761 % 2 ** 32).toString(16).padStart(8, '0')}.`, {
          evidence: { row: i, expected: 'a'.repeat(64), actual: (i % 7 === 0 ? LONG_TOKEN : 'b'.repeat(64)), checkpoint: i - (i % 100) },
          waived: i % 50 === 0 ? { ...WAIVER, check, resource: `row=${i},*` } : undefined,
        }),
      );
    }
    const failing = findings.some((f) => !f.waived && f.severity !== 'info');
    results.push(result(check, `Synthetic check ${c} holds`, severities[c % 4], failing ? 'fail' : 'pass', findings));
  }
  return buildReport(results, { runId: `synthetic-${n}` });
}
