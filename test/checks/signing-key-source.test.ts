import check from '../../checks/signing-key-source';
import { CheckTester, DEFAULT_NOW, runCase } from '../helpers/check-tester';
import { FakeLogSource, type FakeLogLine } from '../fakes';

const NOW = DEFAULT_NOW.getTime();
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
      name: 'an unrecognised source',
      sources: logs(start('audit-1', 10, 'vault', 'env')),
      findings: [{ messageId: 'unknownSource', resource: 'instance=audit-1,key=receipt', message: /unrecognised source "vault"/, evidence: { source: 'vault' } }],
    },
    {
      name: 'the latest start logged one key but not the other',
      // receipt again after receipt+root: the latest start logged no root.
      sources: logs([...start('audit-1', 100), { ts: ago(10), instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' }]),
      findings: [{ messageId: 'notLogged', resource: 'instance=audit-1,key=root', message: /logged no load of the root signing key/ }],
    },
    {
      name: 'a very long or multi-line instance name is bounded in the message, whole in the resource',
      sources: logs(start('audit-1\n' + 'x'.repeat(5000), 10, 'env', 'generated')),
      findings: [
        {
          messageId: 'generated',
          resource: `instance=${JSON.stringify('audit-1\n' + 'x'.repeat(5000))},key=root`,
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
      name: 'no signing_key_loaded event in the window cannot prove anything',
      sources: logs(start('audit-1', 60 * 30)), // 30h ago, window 24h
      error: /no signing_key_loaded events in the last 1d.*widen the window/,
      code: 'AUDIT_ERR_BAD_DATA',
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

test('the window defaults to the log source window and the option widens it', async () => {
  const old = start('audit-1', 60 * 30, 'file');
  const narrow = await runCase(check, { name: 'narrow', sources: logs(old, 3_600_000) });
  expect(narrow.result.status).toBe('error');
  expect(narrow.result.error).toMatch(/last 1h/);
  const source = new FakeLogSource({ audit: old }, { windowMs: 3_600_000 });
  const wide = await runCase(check, { name: 'wide', sources: { logs: source }, options: { window: '2d' } });
  expect(wide.result.status).toBe('fail');
  expect(source.queries[0].query.since.toISOString()).toBe(new Date(NOW - 2 * 86_400_000).toISOString());
  expect(source.queries[0].query.event).toBe('signing_key_loaded');
});

test('without a logs source the check is skipped, never passed', async () => {
  const { result } = await runCase(check, { name: 'none', sources: {} });
  expect(result.status).toBe('skipped');
  expect(result.error).toMatch(/'logs' is not configured/);
});
