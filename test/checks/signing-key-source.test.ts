import { createHash } from 'node:crypto';
import check from '../../checks/signing-key-source';
import { CheckTester, DEFAULT_NOW, runCase } from '../helpers/check-tester';
import { FakeLogSource, type FakeLogLine } from '../fakes';
import { MemoryStateStore } from '../fakes/state-store';
const digest8 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

const NOW = DEFAULT_NOW.getTime();
const DAY_MIN = 24 * 60;
const ago = (minutes: number) => new Date(NOW - minutes * 60_000).toISOString();

/** The two lines one start of an instance logs. */
function start(instance: string, minutesAgo: number, receipt = 'env', root = 'env'): FakeLogLine[] {
  return [
    { ts: ago(minutesAgo), service: 'audit', instance, event: 'signing_key_loaded', key: 'receipt', source: receipt },
    { ts: ago(minutesAgo - 0.01), service: 'audit', instance, event: 'signing_key_loaded', key: 'root', source: root },
  ];
}

const noise: FakeLogLine[] = [{ ts: ago(30), service: 'audit', event: 'receipt_issued', instance: 'audit-1' }];
const logs = (lines: FakeLogLine[], windowMs?: number) => () => ({ logs: new FakeLogSource({ audit: [...noise, ...lines], gateway: [] }, { windowMs }) });

CheckTester.run(check, {
  pass: [
    { name: 'every instance loaded both keys from env', sources: logs([...start('audit-1', 120), ...start('audit-2', 60)]) },
    {
      name: 'an earlier start used the fallback but the latest used env',
      sources: logs([...start('audit-1', 300, 'file', 'generated'), ...start('audit-1', 20)]),
    },
    {
      name: 'a start an hour apart from the previous one is a new start even without a repeated key',
      // The earlier start logged only receipt; the latest logged both (root first).
      sources: logs([
        { ts: ago(90), instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'file' },
        { ts: ago(10), instance: 'audit-1', event: 'signing_key_loaded', key: 'root', source: 'env' },
        { ts: ago(9.9), instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' },
      ]),
    },
    {
      name: 'only the configured keys are required',
      options: { keys: ['receipt'] },
      sources: logs([{ ts: ago(5), instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' }]),
    },
    {
      name: 'instances that last started two days ago, on env, pass (older than the 1-day window)',
      sources: logs([...start('audit-1', 2 * DAY_MIN), ...start('audit-2', 2 * DAY_MIN + 30)]),
      verify: (r) => expect(r.measurements).toContainEqual(expect.objectContaining({ name: 'signing_key_instances', value: 2 })),
    },
    {
      name: 'the service option names where to look',
      options: { service: 'audit-v2' },
      sources: () => ({ logs: new FakeLogSource({ 'audit-v2': start('a', 5), audit: start('b', 5, 'generated') }) }),
    },
  ],
  fail: [
    {
      name: 'PEM file fallback is high, generated is critical',
      sources: logs([...start('audit-1', 100, 'file', 'env'), ...start('audit-2', 100, 'env', 'generated')]),
      findings: [
        { messageId: 'fileFallback', resource: 'instance=audit-1,key=receipt', severity: 'high', message: /audit-1 loaded the receipt signing key from the PEM file/ },
        { messageId: 'generated', resource: 'instance=audit-2,key=root', severity: 'critical', message: /generated the root signing key in memory/ },
      ],
    },
    {
      name: 'the latest start counts, not an earlier good one',
      sources: logs([...start('audit-1', 300), ...start('audit-1', 20, 'file', 'file')]),
      findings: [
        { messageId: 'fileFallback', resource: 'instance=audit-1,key=receipt' },
        { messageId: 'fileFallback', resource: 'instance=audit-1,key=root' },
      ],
    },
    {
      name: 'an instance that last started 12 days ago on the PEM fallback is found',
      sources: logs([...start('audit-1', 20 * DAY_MIN), ...start('audit-1', 12 * DAY_MIN, 'file', 'env'), ...start('audit-2', 2 * DAY_MIN)]),
      findings: [
        {
          messageId: 'fileFallback',
          resource: 'instance=audit-1,key=receipt',
          message: new RegExp(`at its latest start \\(${ago(12 * DAY_MIN).replace(/\./g, '\\.')}\\)`),
          evidence: { loggedAt: ago(12 * DAY_MIN), origin: 'fake:audit:4' },
        },
      ],
    },
    {
      name: 'the lookback option narrows (or widens) the source lookback',
      options: { lookback: '60d' },
      sources: () => ({ logs: new FakeLogSource({ audit: start('audit-1', 45 * DAY_MIN, 'generated') }, { lookbackMs: 86_400_000 }) }),
      findings: [{ messageId: 'generated', resource: 'instance=audit-1,key=receipt', severity: 'critical' }],
    },
    {
      name: 'an unrecognised source',
      sources: logs(start('audit-1', 10, 'vault', 'env')),
      findings: [{ messageId: 'unknownSource', resource: 'instance=audit-1,key=receipt', message: /unrecognised source \(unrecognised value, 5 characters\)/, evidence: { source: 'unrecognised value, 5 characters' } }],
    },
    {
      name: 'the latest start logged one key but not the other',
      // receipt again after receipt+root: the latest start logged no root.
      sources: logs([...start('audit-1', 100), { ts: ago(10), instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' }]),
      findings: [{ messageId: 'notLogged', resource: 'instance=audit-1,key=root', message: /logged no load of the root signing key/ }],
    },
    {
      name: 'a very long or multi-line instance name is bounded in the message and the resource, kept distinct by a digest',
      sources: logs(start('audit-1\n' + 'x'.repeat(5000), 10, 'env', 'generated')),
      findings: [
        {
          messageId: 'generated',
          resource: `instance="audit-1 ${'x'.repeat(191)}…~${digest8('audit-1\n' + 'x'.repeat(5000))}",key=root`,
          message: /^Instance audit-1 x+… generated the root signing key/,
        },
      ],
      verify: (r) => expect(r.findings[0].message.length).toBeLessThan(300),
    },
    {
      name: 'instance names with separators are quoted in the resource',
      sources: logs(start('audit 1,a', 10, 'file')),
      findings: [{ messageId: 'fileFallback', resource: 'instance="audit 1,a",key=receipt' }],
    },
  ],
  error: [
    {
      name: 'no start at all within the lookback cannot prove anything, and says which key widens it',
      sources: logs(start('audit-1', 31 * DAY_MIN)),
      error: /^logs: service audit: no signing_key_loaded event in the last 30d \(sources\.logs\.lookback\), so no start of the audit service can be judged; if it has run longer than that without a restart, widen sources\.logs\.lookback to cover its last start$/,
      code: 'AUDIT_ERR_BAD_DATA',
    },
    {
      name: 'with the lookback set on the check, the error names the check option',
      options: { lookback: '7d' },
      sources: logs(start('audit-1', 12 * DAY_MIN, 'file')),
      error: /no signing_key_loaded event in the last 7d \(checks\.signing-key-source\.options\.lookback\).*widen checks\.signing-key-source\.options\.lookback/,
      code: 'AUDIT_ERR_BAD_DATA',
    },
    {
      name: 'the state store is down',
      sources: logs(start('audit-1', 10)),
      state: (() => {
        const s = new MemoryStateStore();
        s.failures.set('get');
        return s;
      })(),
      error: /state: get: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the audit service has no configured log location',
      sources: () => ({ logs: new FakeLogSource({ gateway: start('x', 1) }) }),
      error: /no log location is configured for service 'audit'/,
      code: 'AUDIT_ERR_CONFIG',
    },
    {
      name: 'the log source is down',
      sources: () => ({ logs: new FakeLogSource({ audit: start('a', 1) }).fail() }),
      error: /logs: events: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
  ],
});

test('the old window option is refused with what replaced it', () => {
  const r = check.options.safeParse({ window: '30d' });
  expect(r.success).toBe(false);
  expect(JSON.stringify(r.error?.issues)).toMatch(/renamed to \\"lookback\\"/);
});

describe('over time: the first run reads the lookback, later runs only what was logged since', () => {
  const at = (d: Date) => ({ now: d });
  const later = (days: number) => new Date(NOW + days * 86_400_000);

  test('the first run reads back the whole lookback, the next resumes after it and reads only new lines', async () => {
    const state = new MemoryStateStore();
    const source = new FakeLogSource({ audit: [...noise, ...start('audit-1', 12 * DAY_MIN)] });
    const first = await runCase(check, { name: 'first', sources: { logs: source }, state });
    expect(first.result.status).toBe('pass');
    expect(source.queries[0].query).toMatchObject({ event: 'signing_key_loaded', since: new Date(NOW - 30 * 86_400_000) });
    expect(source.queries[0].query.after).toBeUndefined();
    const readFirst = source.stats().linesRead;
    expect(readFirst).toBe(3);

    source.append('audit', start('audit-2', -60)); // an hour after the first run
    const second = await runCase(check, { name: 'second', sources: { logs: source }, state, ...at(later(0.1)) });
    expect(second.result.status).toBe('pass');
    expect(source.queries[1].query.after).toEqual({ location: 'fake:audit', at: { n: 3 } });
    expect(source.stats().linesRead - readFirst).toBe(2); // the two new lines, nothing else
    expect(second.result.measurements).toContainEqual(expect.objectContaining({ name: 'signing_key_instances', value: 2 }));
  });

  test('a restart on the fallback after the state was saved is seen on the next cycle; with nothing new the verdict holds', async () => {
    const state = new MemoryStateStore();
    const source = new FakeLogSource({ audit: start('audit-1', 3 * DAY_MIN) });
    expect((await runCase(check, { name: 'c1', sources: { logs: source }, state })).result.status).toBe('pass');
    source.append('audit', start('audit-1', -30, 'file', 'env'));
    const c2 = await runCase(check, { name: 'c2', sources: { logs: source }, state, ...at(later(1 / 24)) });
    expect(c2.result.status).toBe('fail');
    expect(c2.result.findings.map((f) => `${f.messageId} ${f.resource}`)).toEqual(['fileFallback instance=audit-1,key=receipt']);
    // Nothing logged since: the kept start still decides, read from state alone.
    const c3 = await runCase(check, { name: 'c3', sources: { logs: source }, state, ...at(later(2)) });
    expect(c3.result.findings.map((f) => f.resource)).toEqual(['instance=audit-1,key=receipt']);
    // Fixed by a restart on env.
    source.append('audit', start('audit-1', -3 * DAY_MIN));
    expect((await runCase(check, { name: 'c4', sources: { logs: source }, state, ...at(later(3.01)) })).result.status).toBe('pass');
  });

  test('a kept start that falls out of the lookback is dropped, as a fresh read would: then the check is an error', async () => {
    const state = new MemoryStateStore();
    const source = new FakeLogSource({ audit: start('audit-1', 20 * DAY_MIN, 'file') });
    expect((await runCase(check, { name: 'in', sources: { logs: source }, state })).result.status).toBe('fail');
    const out = await runCase(check, { name: 'out', sources: { logs: source }, state, ...at(later(11)) });
    expect(out.result.status).toBe('error');
    expect(out.result.error).toMatch(/no signing_key_loaded event in the last 30d \(sources\.logs\.lookback\)/);
  });

  test('the state holds only the latest start of each instance, and no more than that', async () => {
    const state = new MemoryStateStore();
    const many: FakeLogLine[] = [];
    for (let d = 29; d >= 1; d--) many.push(...start('audit-1', d * DAY_MIN, d % 2 ? 'file' : 'env'));
    const source = new FakeLogSource({ audit: many });
    const r = await runCase(check, { name: 'many', sources: { logs: source }, state });
    expect(r.result.findings.map((f) => f.resource)).toEqual(['instance=audit-1,key=receipt']); // day 1: file
    const dump = state.dump();
    expect(dump.match(/"key":"(receipt|root)"/g)).toHaveLength(2);
  });

  test('state is keyed by the log location, not the deployment name: another location reads afresh', async () => {
    const state = new MemoryStateStore();
    const source = new FakeLogSource({ audit: start('audit-1', 60) });
    await runCase(check, { name: 'a', sources: { logs: source }, state, deployment: 'prod' });
    await runCase(check, { name: 'b', sources: { logs: source }, state, deployment: 'prod-renamed' });
    expect(source.queries[1].query.after).toEqual({ location: 'fake:audit', at: { n: 2 } });
    expect(state.keys()).toHaveLength(1);
    expect(state.keys()[0]).toMatch(/^signing-key-source:starts:[0-9a-f]{24}$/);

    // The same deployment name over other logs (another config, a rebuilt environment): a full read, its own state.
    const other = new FakeLogSource({ audit: start('audit-9', 60, 'generated') }, { name: 'elsewhere' });
    const r = await runCase(check, { name: 'c', sources: { logs: other }, state, deployment: 'prod' });
    expect(other.queries[0].query.after).toBeUndefined();
    expect(r.result.findings.map((f) => f.resource)).toEqual(['instance=audit-9,key=receipt']);
    expect(state.keys()).toHaveLength(2);
  });

  test('run --full reads the whole lookback again, ignoring what was kept', async () => {
    const state = new MemoryStateStore();
    const source = new FakeLogSource({ audit: start('audit-1', 60, 'file') });
    await runCase(check, { name: 'a', sources: { logs: source }, state });
    const full = await runCase(check, { name: 'b', sources: { logs: source }, state, full: true });
    expect(source.queries[1].query.after).toBeUndefined();
    expect(full.result.measurements).toContainEqual(expect.objectContaining({ name: 'signing_key_events_read', value: 2 }));
    expect(full.result.findings.map((f) => f.resource)).toEqual(['instance=audit-1,key=receipt']);
    await runCase(check, { name: 'c', sources: { logs: source }, state });
    expect(source.queries[2].query.after).toEqual({ location: 'fake:audit', at: { n: 2 } });
  });

  test('kept state that is corrupt or from another version is read afresh, not trusted', async () => {
    const state = new MemoryStateStore();
    const source = new FakeLogSource({ audit: start('audit-1', 60, 'file') });
    await runCase(check, { name: 'a', sources: { logs: source }, state });
    const key = state.keys()[0];
    await state.set(key, { version: 1, location: 'fake:audit', params: '{"startGap":300000}', cursor: { location: 'fake:audit', at: { n: 2 } }, entries: [['audit-1', [{ ts: 'yesterday' }]]] });
    const r = await runCase(check, { name: 'b', sources: { logs: source }, state });
    expect(source.queries[1].query.after).toBeUndefined();
    expect(r.result.findings.map((f) => f.resource)).toEqual(['instance=audit-1,key=receipt']);
  });
});

test('without a logs source the check is skipped, never passed', async () => {
  const { result } = await runCase(check, { name: 'none', sources: {} });
  expect(result.status).toBe('skipped');
  expect(result.error).toMatch(/'logs' is not configured/);
});
