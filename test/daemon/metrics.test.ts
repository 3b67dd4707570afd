import { spawnSync } from 'node:child_process';
import { requireBinary } from '../helpers/binaries';
import { ComplianceMetrics, validMeasurementName } from '../../src/outputs/metrics';
import type { CheckResult, Finding } from '../../src/core/types';

const PROMTOOL = '/usr/bin/promtool';

function finding(check: string, severity: Finding['severity'], waived = false): Finding {
  return {
    id: `${check}-${severity}-${waived}`,
    check,
    severity,
    resource: 'x=1',
    messageId: 'm',
    message: 'm',
    evidence: {},
    remediation: 'r',
    ...(waived ? { waived: { check, resource: '*', justification: 'j', approver: 'a', ticket: 't', expires: '2999-01-01' } } : {}),
  };
}

function result(check: string, status: CheckResult['status'], extra: Partial<CheckResult> = {}): CheckResult {
  return {
    check,
    title: check,
    severity: 'critical',
    status,
    durationMs: 1500,
    error: status === 'error' ? 'boom' : null,
    findings: [],
    startedAt: '2026-11-22T10:00:00.000Z',
    ...extra,
  };
}

/** `name{labels} value` lines of a Prometheus text exposition, as a map. */
function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

const plan = [
  { id: 'historical-keys', severity: 'critical' as const, sources: ['postgres'] },
  { id: 'auth-failure-spike', severity: 'high' as const, sources: ['logs'] },
];

describe('ComplianceMetrics', () => {
  test('every planned check is exported before its first run, all statuses 0', async () => {
    const m = new ComplianceMetrics({ version: '9.9.9' });
    m.setPlan(plan);
    const s = samples((await m.render()).body);
    for (const status of ['pass', 'fail', 'error', 'skipped']) {
      expect(s.get(`aegis_compliance_check_status{check="historical-keys",check_severity="critical",status="${status}"}`)).toBe(0);
      expect(s.get(`aegis_compliance_check_status{check="auth-failure-spike",check_severity="high",status="${status}"}`)).toBe(0);
    }
    expect(s.get('aegis_compliance_findings{check="historical-keys",check_severity="critical"}')).toBe(0);
    expect(s.get('aegis_compliance_check_last_success_timestamp_seconds{check="historical-keys"}')).toBe(0);
    expect(s.get('aegis_compliance_build_info{version="9.9.9"}')).toBe(1);
    expect(s.get('aegis_compliance_leader')).toBe(0);
    expect([...s.keys()].some((k) => /[{,]severity=/.test(k))).toBe(false);
  });

  test('update sets the state set, findings (not waived, not info), timestamps, measurements and sources', async () => {
    const m = new ComplianceMetrics();
    m.setPlan(plan);
    m.update([
      result('historical-keys', 'fail', {
        findings: [finding('historical-keys', 'critical'), finding('historical-keys', 'info'), finding('historical-keys', 'critical', true)],
      }),
      result('auth-failure-spike', 'error', {
        severity: 'high',
        sourceErrors: [{ source: 'logs', reason: 'permission_denied' }],
        measurements: [{ name: 'auth_failures', value: 12, help: 'Auth failures in the window.' }],
      }),
    ]);
    const s = samples((await m.render()).body);
    const t = Date.parse('2026-11-22T10:00:00.000Z') / 1000 + 1.5;
    expect(s.get('aegis_compliance_check_status{check="historical-keys",check_severity="critical",status="fail"}')).toBe(1);
    expect(s.get('aegis_compliance_check_status{check="historical-keys",check_severity="critical",status="pass"}')).toBe(0);
    expect(s.get('aegis_compliance_findings{check="historical-keys",check_severity="critical"}')).toBe(1);
    expect(s.get('aegis_compliance_check_duration_seconds{check="historical-keys"}')).toBe(1.5);
    expect(s.get('aegis_compliance_check_last_run_timestamp_seconds{check="historical-keys"}')).toBe(t);
    expect(s.get('aegis_compliance_check_last_success_timestamp_seconds{check="historical-keys"}')).toBe(t);
    // error: ran, but not a success
    expect(s.get('aegis_compliance_check_status{check="auth-failure-spike",check_severity="high",status="error"}')).toBe(1);
    expect(s.get('aegis_compliance_check_last_run_timestamp_seconds{check="auth-failure-spike"}')).toBe(t);
    expect(s.get('aegis_compliance_check_last_success_timestamp_seconds{check="auth-failure-spike"}')).toBe(0);
    expect(s.get('aegis_compliance_auth_failures{check="auth-failure-spike"}')).toBe(12);
    expect(s.get('aegis_compliance_source_up{source="logs"}')).toBe(0);
    expect(s.get('aegis_compliance_source_up{source="postgres"}')).toBe(1);
    expect(s.get('aegis_compliance_source_errors_total{source="logs",reason="permission_denied"}')).toBe(1);

    // The source recovers: up again, error counter keeps its count, status moves.
    m.update([result('auth-failure-spike', 'pass', { severity: 'high' })]);
    const s2 = samples((await m.render()).body);
    expect(s2.get('aegis_compliance_source_up{source="logs"}')).toBe(1);
    expect(s2.get('aegis_compliance_source_errors_total{source="logs",reason="permission_denied"}')).toBe(1);
    expect(s2.get('aegis_compliance_check_status{check="auth-failure-spike",check_severity="high",status="error"}')).toBe(0);
    expect(s2.get('aegis_compliance_check_status{check="auth-failure-spike",check_severity="high",status="pass"}')).toBe(1);
    // a figure not measured this run is no longer exported
    expect(s2.has('aegis_compliance_auth_failures{check="auth-failure-spike"}')).toBe(false);
  });

  test('checks that leave the plan disappear from every metric', async () => {
    const m = new ComplianceMetrics();
    m.setPlan(plan);
    m.update([result('auth-failure-spike', 'pass', { measurements: [{ name: 'auth_failures', value: 3, help: 'h' }] })]);
    m.setPlan([plan[0]]);
    const body = (await m.render()).body;
    expect(body).not.toContain('auth-failure-spike');
    expect(body).toContain('check="historical-keys"');
  });

  test('bad measurement names are refused and reported, never exported', async () => {
    const bad: string[] = [];
    const m = new ComplianceMetrics({ onInvalidMeasurement: (_c, n) => bad.push(n) });
    m.setPlan(plan);
    m.update([result('auth-failure-spike', 'pass', { measurements: [
      { name: 'authFailures', value: 1, help: 'h' },
      { name: 'rows_total', value: 1, help: 'h' },
      { name: 'check_status', value: 1, help: 'h' },
      { name: 'verified_rows', value: Number.NaN, help: 'h' },
    ] })]);
    expect(bad).toEqual(['authFailures', 'rows_total', 'check_status', 'verified_rows']);
    expect(validMeasurementName('verified_rows')).toBeUndefined();
    const body = (await m.render()).body;
    expect(body).not.toMatch(/authFailures|rows_total|verified_rows/);
  });

  test('OpenMetrics when asked, and the Prometheus format is unchanged after it', async () => {
    const m = new ComplianceMetrics();
    m.setPlan(plan);
    m.update([result('historical-keys', 'error', { sourceErrors: [{ source: 'postgres', reason: 'connection_refused' }] })]);
    const [om, prom] = await Promise.all([m.render(true), m.render(false)]);
    expect(om.contentType).toMatch(/^application\/openmetrics-text/);
    expect(om.body).toContain('# TYPE aegis_compliance_source_errors counter');
    expect(om.body).toContain('aegis_compliance_source_errors_total{source="postgres",reason="connection_refused"} 1');
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    expect(prom.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const again = await m.render(false);
    expect(again.body).toContain('# TYPE aegis_compliance_source_errors_total counter');
    expect(again.body).toContain('aegis_compliance_source_errors_total{source="postgres",reason="connection_refused"} 1');
  });

  test('promtool check metrics prints nothing for our exposition', async () => {
    requireBinary(PROMTOOL, 'prometheus');
    const m = new ComplianceMetrics();
    m.setPlan(plan);
    m.setLeader(true);
    m.update([
      result('historical-keys', 'fail', { findings: [finding('historical-keys', 'critical')], measurements: [{ name: 'verified_rows', value: 100, help: 'Audit rows verified.' }] }),
      result('auth-failure-spike', 'error', { sourceErrors: [{ source: 'logs', reason: 'timeout' }], measurements: [{ name: 'auth_failures', value: 4, help: 'Auth failures in the window.' }] }),
    ]);
    const { body } = await m.render();
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
