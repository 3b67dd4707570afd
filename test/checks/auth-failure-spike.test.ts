import check, { baselineThreshold, median } from '../../checks/auth-failure-spike';
import { CheckTester, DEFAULT_NOW, runCase } from '../helpers/check-tester';
import { FakeLogSource, type FakeLogLine } from '../fakes/log-source';
import { FakePrometheusSource } from '../fakes/prometheus-source';
import type { CheckResult } from '../../src/core/types';

const MIN = 60_000;
const W = 15 * MIN;

/** `n` auth failures spread inside window `i` (0 = current) from the given clients in turn. */
function failures(service: string, i: number, n: number, clients: string[] = ['198.51.100.1']): FakeLogLine[] {
  const end = DEFAULT_NOW.getTime() - i * W;
  return Array.from({ length: n }, (_, j) => ({
    ts: new Date(end - 1_000 - Math.floor((j * (W - 2_000)) / Math.max(1, n))).toISOString(),
    service,
    event: 'auth_failure',
    reason: 'invalid_token',
    client: clients[j % clients.length],
  }));
}

/** A steady history: `perWindow` failures in each of the 12 earlier windows, with a little noise. */
function history(service: string, perWindow: number[]): FakeLogLine[] {
  return perWindow.flatMap((n, k) => failures(service, k + 1, n));
}

const quiet = [4, 6, 5, 5, 7, 4, 6, 5, 3, 6, 5, 5];

function measured(r: CheckResult): Record<string, number> {
  return Object.fromEntries((r.measurements ?? []).map((m) => [m.name, m.value]));
}

/** Prometheus answering increase() per window: value for the window ending at `time`. */
function prom(perWindow: number[]) {
  return new FakePrometheusSource((_q, time) => {
    const i = Math.round((DEFAULT_NOW.getTime() - (time ?? DEFAULT_NOW).getTime()) / W);
    return perWindow[i] === undefined ? [] : [{ labels: {}, value: perWindow[i] + 0.4 }];
  });
}

CheckTester.run(check, {
  pass: [
    {
      name: 'quiet history, quiet now',
      sources: () => ({ logs: new FakeLogSource({ gateway: [...history('gateway', quiet), ...failures('gateway', 0, 6)], identity: failures('identity', 0, 2) }) }),
      verify: (r) => expect(measured(r)).toEqual({ auth_failures: 8, auth_failures_baseline: 10 }),
    },
    {
      name: 'a busy but steady service stays under median + k·MAD',
      options: { max_failures: 500 },
      sources: () => ({ logs: new FakeLogSource({ gateway: [...history('gateway', [100, 110, 90, 105, 95, 100, 102, 98, 100, 104, 96, 100]), ...failures('gateway', 0, 115)] }) }),
      verify: (r) => expect(measured(r)).toEqual({ auth_failures: 115, auth_failures_baseline: 115 }),
    },
    {
      name: 'services not listed do not count',
      sources: () => ({ logs: new FakeLogSource({ api: failures('api', 0, 200), gateway: history('gateway', quiet) }) }),
    },
    {
      name: 'other events do not count',
      sources: () => ({ logs: new FakeLogSource({ gateway: failures('gateway', 0, 80).map((l) => ({ ...l, event: 'auth_success' })) }) }),
    },
    {
      name: 'prometheus: steady counter',
      sources: () => ({ prometheus: prom([6, ...quiet]) }),
      verify: (r) => expect(measured(r)).toEqual({ auth_failures: 6, auth_failures_baseline: 10 }),
    },
  ],
  fail: [
    {
      name: 'over the absolute limit and the baseline, naming the top sources',
      sources: () => ({
        logs: new FakeLogSource({
          gateway: [...history('gateway', quiet), ...failures('gateway', 0, 60, ['203.0.113.7', '203.0.113.7', '203.0.113.7', '198.51.100.23', '192.0.2.1', '192.0.2.2', '192.0.2.3'])],
          identity: failures('identity', 0, 5, ['203.0.113.99']),
        }),
      }),
      findings: [
        {
          messageId: 'overLimit',
          resource: 'window=current',
          severity: 'high',
          message: /^65 auth failures in the last 15m exceed the limit of 50 and the baseline threshold of 10; top sources: 203\.0\.113\.7 \(27\), 198\.51\.100\.23 \(9\), 192\.0\.2\.1 \(8\), 192\.0\.2\.2 \(8\), 192\.0\.2\.3 \(8\)\.$/,
          evidence: { from: 'logs', failures: 65, limit: 50, overLimit: true, overBaseline: true, topClients: [{ client: '203.0.113.7', count: 27 }, { client: '198.51.100.23', count: 9 }, { client: '192.0.2.1', count: 8 }, { client: '192.0.2.2', count: 8 }, { client: '192.0.2.3', count: 8 }] },
        },
      ],
      verify: (r) => expect(measured(r)).toEqual({ auth_failures: 65, auth_failures_baseline: 10 }),
    },
    {
      name: 'under the limit but far over the baseline',
      sources: () => ({ logs: new FakeLogSource({ gateway: [...history('gateway', quiet), ...failures('gateway', 0, 30, ['203.0.113.7'])] }) }),
      findings: [
        {
          messageId: 'overBaseline',
          resource: 'window=current',
          message: /^30 auth failures in the last 15m exceed the baseline threshold of 10 \(median 5 \+ 5·MAD 1 over 12 earlier windows\); top sources: 203\.0\.113\.7 \(30\)\.$/,
          evidence: { overLimit: false, overBaseline: true, baseline: { median: 5, mad: 1, threshold: 10 } },
        },
      ],
    },
    {
      name: 'over the limit on a busy baseline',
      options: { max_failures: 100 },
      sources: () => ({ logs: new FakeLogSource({ gateway: [...history('gateway', [100, 110, 90, 105, 95, 100, 102, 98, 100, 104, 96, 100]), ...failures('gateway', 0, 101)] }) }),
      findings: [{ messageId: 'overLimit', resource: 'window=current', message: /^101 auth failures in the last 15m exceed the limit of 100; top sources/ }],
    },
    {
      name: 'prometheus: a spike, without client names',
      sources: () => ({ prometheus: prom([80, ...quiet]) }),
      findings: [{ messageId: 'overLimit', resource: 'window=current', message: /top sources: not available from Prometheus\.$/, evidence: { from: 'prometheus', failures: 80 } }],
    },
    {
      name: 'a shorter window and baseline from options',
      options: { window: '5m', baseline_windows: 4, k: 3, baseline_floor: 2, max_failures: 1000 },
      sources: () => ({ prometheus: new FakePrometheusSource((_q, t) => [{ labels: {}, value: (t ?? DEFAULT_NOW).getTime() === DEFAULT_NOW.getTime() ? 9 : 2 }]) }),
      findings: [{ messageId: 'overBaseline', resource: 'window=current', evidence: { baseline: { windows: [2, 2, 2, 2], threshold: 2 } } }],
    },
  ],
  error: [
    {
      name: 'logs unreadable is an error, never zero failures',
      sources: () => ({ logs: new FakeLogSource({ gateway: failures('gateway', 0, 3) }).fail() }),
      error: /^logs: events: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'prometheus down',
      sources: () => ({ prometheus: prom([1]).fail() }),
      error: /^prometheus: query: connection refused/,
    },
  ],
});

describe('auth-failure-spike details', () => {
  test('median and MAD', () => {
    expect(median([])).toBe(0);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // One wild window barely moves a robust baseline.
    expect(baselineThreshold([5, 5, 6, 4, 5, 500], 5, 0)).toEqual({ median: 5, mad: 0.5, threshold: 7.5 });
    expect(baselineThreshold([0, 0, 0], 5, 10).threshold).toBe(10);
  });

  test('prometheus is asked for increase() over the window now and at each earlier window', async () => {
    const p = prom([1, ...quiet]);
    const out = await runCase(check, { name: 'q', sources: { prometheus: p } });
    expect(out.result.status).toBe('pass');
    expect(p.queries).toHaveLength(13);
    expect(new Set(p.queries.map((q) => q.promql))).toEqual(new Set(['sum(increase(aegis_auth_failures_total[900s]))']));
    expect(p.queries.map((q) => (DEFAULT_NOW.getTime() - (q.time as Date).getTime()) / W)).toEqual([...Array(13).keys()]);
  });

  test('logs are read once per service over the current and baseline windows', async () => {
    const logs = new FakeLogSource({ gateway: [], identity: [] });
    await runCase(check, { name: 'w', sources: { logs } });
    expect(logs.queries.map((q) => [q.service, q.query.event, q.query.since.toISOString()])).toEqual([
      ['gateway', 'auth_failure', new Date(DEFAULT_NOW.getTime() - 13 * W).toISOString()],
      ['identity', 'auth_failure', new Date(DEFAULT_NOW.getTime() - 13 * W).toISOString()],
    ]);
  });

  test('with logs for none of the services and no prometheus the check is skipped', async () => {
    const out = await runCase(check, { name: 'n', sources: { logs: new FakeLogSource({ audit: [] }) } });
    expect(out.result.status).toBe('skipped');
    expect(out.result.error).toMatch(/no log location is configured for gateway, identity/);
  });

  test('auto prefers logs but falls back to prometheus when logs lack the services', async () => {
    const out = await runCase(check, { name: 'f', sources: { logs: new FakeLogSource({ audit: [] }), prometheus: prom([70, ...quiet]) } });
    expect(out.result.status).toBe('fail');
    expect(out.result.findings[0].evidence).toMatchObject({ from: 'prometheus' });
  });
});
