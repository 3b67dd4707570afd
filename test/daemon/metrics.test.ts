import { spawnSync } from 'node:child_process';
import { requireBinary } from '../helpers/binaries';
import { ComplianceMetrics, processMetrics, renderRegistry, runOutcome, threadSectionAsOpenMetrics, validMeasurementName, type MetricsOp } from '../../src/outputs/metrics';
import { sample } from './helpers';
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

/** The exposition as a lookup: `s.get(series)` is the sample of that series (labels in any order; see sample()). */
function samples(text: string): { get(series: string): number | undefined; has(series: string): boolean; keys(): string[] } {
  return {
    get: (series) => sample(text, series),
    has: (series) => sample(text, series) !== undefined,
    keys: () => text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' '))),
  };
}

const D = 'prod';
const plan = [
  { id: 'historical-keys', severity: 'critical' as const, sources: ['postgres'] },
  { id: 'auth-failure-spike', severity: 'high' as const, sources: ['logs'] },
];

describe('ComplianceMetrics', () => {
  test("a mirror (the state, then every change, each cloned as a thread's message is) renders exactly the original's series", async () => {
    const reloads = { success: 1, failure: 0 };
    const m = new ComplianceMetrics({ version: '1.2.3', reloads: () => reloads });
    m.setPlan(D, plan);
    m.setLeader(D, true);
    m.recordReport(D, { results: [result('historical-keys', 'fail', { findings: [finding('historical-keys', 'critical'), finding('historical-keys', 'info')], measurements: [{ name: 'rows_seen', value: 3, help: 'Rows.' }] })] });
    const ops: MetricsOp[] = [];
    const { snapshot, stop } = m.mirror((op) => ops.push(structuredClone(op)));
    const copy = ComplianceMetrics.fromSnapshot(structuredClone(snapshot));
    const same = async () => {
      for (const op of ops.splice(0)) copy.apply(op);
      for (const om of [false, true]) {
        expect(await renderRegistry(copy.registry, om)).toBe(await renderRegistry(m.registry, om));
        expect(await renderRegistry(copy.progressRegistry, om)).toBe(await renderRegistry(m.progressRegistry, om));
      }
    };
    await same();
    m.progress(D, 'historical-keys', { done: 500, total: 1000, startedMs: 1 });
    m.progress(D, 'historical-keys', { done: 900, total: 1000, startedMs: 1 });
    m.update(D, [result('auth-failure-spike', 'error', { sourceErrors: [{ source: 'logs', reason: 'timeout' }], measurements: [{ name: 'events_seen', value: 12, help: 'Events.' }, { name: 'Bad Name', value: 1, help: '' }] })], new Date('2026-11-22T11:00:00Z'));
    m.recordRun(D, 'error');
    m.setPlan('staging', [plan[0]]);
    m.setLeader('staging', false);
    m.retainSources(D, ['postgres']);
    reloads.failure++;
    m.reloadsChanged();
    await same();
    expect(sample(await renderRegistry(copy.progressRegistry, false), 'aegis_compliance_check_rows_processed_total{deployment="prod",check="historical-keys"}')).toBe(900);
    expect((await copy.render()).body).toContain('aegis_compliance_check_rows_processed_total{deployment="prod",check="historical-keys"} 900');
    expect(sample(await renderRegistry(copy.registry, false), 'aegis_compliance_config_reloads_total{deployment="prod",outcome="failure"}')).toBe(1);
    m.setPlan(D, [plan[1]]);
    m.removeDeployment('staging');
    await same();
    stop();
    m.setLeader(D, false);
    expect(ops).toEqual([]);
  });

  test('every planned check is exported before its first run, all statuses 0', async () => {
    const m = new ComplianceMetrics({ version: '9.9.9' });
    m.setPlan(D, plan);
    const s = samples((await m.render()).body);
    for (const status of ['pass', 'fail', 'error', 'skipped']) {
      expect(s.get(`aegis_compliance_check_status{check="historical-keys",check_severity="critical",status="${status}"}`)).toBe(0);
      expect(s.get(`aegis_compliance_check_status{check="auth-failure-spike",check_severity="high",status="${status}"}`)).toBe(0);
    }
    expect(s.get('aegis_compliance_findings{check="historical-keys",check_severity="critical"}')).toBe(0);
    expect(s.get('aegis_compliance_check_last_success_timestamp_seconds{check="historical-keys"}')).toBe(0);
    expect(s.get('aegis_compliance_build_info{deployment="prod",version="9.9.9"}')).toBe(1);
    expect(s.get('aegis_compliance_leader')).toBe(0);
    expect(s.keys().some((k) => /[{,]severity=/.test(k))).toBe(false);
  });

  test('update sets the state set, findings (not waived, not info), timestamps, measurements and sources', async () => {
    const m = new ComplianceMetrics();
    m.setPlan(D, plan);
    m.update(D, [
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
    m.update(D, [result('auth-failure-spike', 'pass', { severity: 'high' })]);
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
    m.setPlan(D, plan);
    m.update(D, [result('auth-failure-spike', 'pass', { measurements: [{ name: 'auth_failures', value: 3, help: 'h' }] })]);
    m.setPlan(D, [plan[0]]);
    const body = (await m.render()).body;
    expect(body).not.toContain('auth-failure-spike');
    expect(body).toContain('check="historical-keys"');
  });

  test('bad measurement names are refused and reported, never exported', async () => {
    const bad: string[] = [];
    const m = new ComplianceMetrics({ onInvalidMeasurement: (_c, n) => bad.push(n) });
    m.setPlan(D, plan);
    m.update(D, [result('auth-failure-spike', 'pass', { measurements: [
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
    m.setPlan(D, plan);
    m.update(D, [result('historical-keys', 'error', { sourceErrors: [{ source: 'postgres', reason: 'connection_refused' }] })]);
    const [om, prom] = await Promise.all([m.render(true), m.render(false)]);
    expect(om.contentType).toMatch(/^application\/openmetrics-text/);
    expect(om.body).toContain('# TYPE aegis_compliance_source_errors counter');
    expect(om.body).toContain('aegis_compliance_source_errors_total{deployment="prod",source="postgres",reason="connection_refused"} 1');
    // the process's counters too, and exactly one EOF, at the end
    expect(om.body).toContain('# TYPE process_cpu_user_seconds counter');
    expect(om.body).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(om.body.match(/# EOF/g)).toHaveLength(1);
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    expect(prom.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const again = await m.render(false);
    expect(again.body).toContain('# TYPE aegis_compliance_source_errors_total counter');
    expect(again.body).toContain('aegis_compliance_source_errors_total{deployment="prod",source="postgres",reason="connection_refused"} 1');
    expect(again.body).toContain('# TYPE process_cpu_user_seconds_total counter');
  });

  test('promtool check metrics prints nothing for our exposition', async () => {
    requireBinary(PROMTOOL, 'prometheus');
    const m = new ComplianceMetrics();
    m.setPlan(D, plan);
    m.setLeader(D, true);
    m.update(D, [
      result('historical-keys', 'fail', { findings: [finding('historical-keys', 'critical')], measurements: [{ name: 'verified_rows', value: 100, help: 'Audit rows verified.' }] }),
      result('auth-failure-spike', 'error', { sourceErrors: [{ source: 'logs', reason: 'timeout' }], measurements: [{ name: 'auth_failures', value: 4, help: 'Auth failures in the window.' }] }),
    ]);
    const { body } = await m.render();
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('several deployments in one registry stay apart, and one can be removed with all its series', async () => {
    const m = new ComplianceMetrics({ version: '1.2.3' });
    m.setPlan('prod', plan);
    m.setPlan('staging', [plan[0]]);
    m.setLeader('prod', true);
    m.update('prod', [result('historical-keys', 'fail', { findings: [finding('historical-keys', 'critical')], sourceErrors: [{ source: 'postgres', reason: 'timeout' }] })]);
    m.update('staging', [result('historical-keys', 'pass')]);
    m.recordReport('staging', { results: [result('historical-keys', 'pass')] });
    const s = samples((await m.render()).body);
    const st = (d: string, status: string) => s.get(`aegis_compliance_check_status{deployment="${d}",check="historical-keys",check_severity="critical",status="${status}"}`);
    expect([st('prod', 'fail'), st('prod', 'pass'), st('staging', 'fail'), st('staging', 'pass')]).toEqual([1, 0, 0, 1]);
    expect(s.get('aegis_compliance_findings{deployment="prod",check="historical-keys",check_severity="critical"}')).toBe(1);
    expect(s.get('aegis_compliance_findings{deployment="staging",check="historical-keys",check_severity="critical"}')).toBe(0);
    expect(s.has('aegis_compliance_findings{deployment="staging",check="auth-failure-spike",check_severity="high"}')).toBe(false);
    expect(s.get('aegis_compliance_source_errors_total{deployment="prod",source="postgres",reason="timeout"}')).toBe(1);
    expect(s.has('aegis_compliance_source_errors_total{deployment="staging",source="postgres",reason="timeout"}')).toBe(false);
    expect(s.get('aegis_compliance_source_up{deployment="prod",source="postgres"}')).toBe(0);
    expect(s.get('aegis_compliance_source_up{deployment="staging",source="postgres"}')).toBe(1);
    expect(s.get('aegis_compliance_leader{deployment="prod"}')).toBe(1);
    expect(s.get('aegis_compliance_leader{deployment="staging"}')).toBe(0);
    expect(s.get('aegis_compliance_build_info{deployment="prod",version="1.2.3"}')).toBe(1);
    expect(s.get('aegis_compliance_build_info{deployment="staging",version="1.2.3"}')).toBe(1);
    expect(s.get('aegis_compliance_runs_total{deployment="staging",outcome="pass"}')).toBe(1);
    expect(s.get('aegis_compliance_runs_total{deployment="prod",outcome="pass"}')).toBe(0);
    // a query without the deployment is ambiguous here, and says so
    expect(() => s.get('aegis_compliance_leader')).toThrow(/matches 2 series/);
    // every series of ours names its deployment
    const ours = s.keys().filter((k) => k.startsWith('aegis_compliance_'));
    expect(ours.length).toBeGreaterThan(20);
    expect(ours.filter((k) => !/[{,]deployment="(prod|staging)"/.test(k))).toEqual([]);

    m.removeDeployment('prod');
    const after = (await m.render()).body;
    expect(after).not.toContain('deployment="prod"');
    expect(after).toContain('deployment="staging"');
    expect(m.deploymentNames()).toEqual(['staging']);
  });

  test('runs_total counts runs by outcome, every outcome exported from the start', async () => {
    const m = new ComplianceMetrics();
    m.setPlan(D, plan);
    let s = samples((await m.render()).body);
    for (const o of ['pass', 'fail', 'error', 'aborted']) expect(s.get(`aegis_compliance_runs_total{deployment="prod",outcome="${o}"}`)).toBe(0);
    m.recordReport(D, { results: [result('historical-keys', 'pass'), result('auth-failure-spike', 'skipped')] });
    m.recordReport(D, { results: [result('historical-keys', 'fail', { findings: [finding('historical-keys', 'critical')] }), result('auth-failure-spike', 'pass')] });
    m.recordReport(D, { results: [result('historical-keys', 'fail'), result('auth-failure-spike', 'error')] });
    m.recordReport(D, { results: [result('historical-keys', 'error')] }, true);
    m.recordReport(D, { results: [result('historical-keys', 'pass')] });
    s = samples((await m.render()).body);
    expect(['pass', 'fail', 'error', 'aborted'].map((o) => s.get(`aegis_compliance_runs_total{deployment="prod",outcome="${o}"}`))).toEqual([2, 1, 1, 1]);
    expect(runOutcome([])).toBe('pass');
    // a run of a deployment nobody planned is not counted (and creates no series)
    m.recordRun('elsewhere', 'pass');
    expect((await m.render()).body).not.toContain('elsewhere');
  });

  test("the process's own metrics (CPU, memory, heap, event-loop lag) follow ours, once per process", async () => {
    const a = new ComplianceMetrics();
    const b = new ComplianceMetrics();
    a.setPlan(D, plan);
    b.setPlan('other', plan);
    const [ra, rb] = await Promise.all([a.render(), b.render()]);
    for (const body of [ra.body, rb.body]) {
      const s = samples(body);
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'process_start_time_seconds']) {
        expect({ name, value: typeof s.get(name) }).toEqual({ name, value: 'number' });
      }
      expect(s.get('nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    }
    expect(ra.body).toContain('deployment="prod"');
    expect(ra.body).not.toContain('deployment="other"');
  });

  test("a thread's own series sent as Prometheus text read as OpenMetrics are prom-client's own OpenMetrics rendering of them", async () => {
    const m = new ComplianceMetrics();
    // Values move between two renders (the event loop, the heap): compare the lines' shapes.
    const shape = (body: string) => body.split('\n').map((l) => (l.startsWith('#') ? l : l.replace(/ \S+$/, ' <value>')));
    const text = await m.renderThreadSection(false);
    const om = await renderRegistry(processMetrics().thread, true);
    expect(shape(threadSectionAsOpenMetrics(text))).toEqual(shape(om.replace(/# EOF\n$/, '')));
    // No counter among them (OpenMetrics would name it differently): the premise of the above.
    expect(text).not.toMatch(/^# TYPE \S+ counter$/m);
    expect(text).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
  });
});
