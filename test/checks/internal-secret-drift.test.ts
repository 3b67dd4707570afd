import check from '../../checks/internal-secret-drift';
import { CheckTester, DEFAULT_NOW, runCase } from '../helpers/check-tester';
import { FakeSecretStore, type FakeHolder } from '../fakes';

const SERVICES = ['identity', 'gateway', 'api', 'audit', 'insight'];
const OLD = 'Qm9sZC1vbGQtMTcwMDAwMDAwMA7d1f0c';
const NEW = 'bmV3LW5ldy0xODAwMDAwMDAw92ab4eZZ';
const OTHER = 'cm9ndWUtcm9ndWUtMTkwMDAwMDAw55xQ';
const daysAgo = (d: number) => new Date(DEFAULT_NOW.getTime() - d * 86_400_000);

const current = (service: string, value: string, provider: FakeHolder['provider'] = 'ssm', lastModified = daysAgo(1)): FakeHolder => ({
  service,
  name: 'INTERNAL_SECRET',
  value,
  provider,
  lastModified,
});
const previous = (service: string, value: string, lastModified = daysAgo(1), provider: FakeHolder['provider'] = 'ssm'): FakeHolder => ({
  service,
  name: 'INTERNAL_SECRET_PREVIOUS',
  value,
  provider,
  lastModified,
});
const store = (holders: FakeHolder[], services = SERVICES) => () => ({ secrets: new FakeSecretStore({ services, holders }) });
const all = (value: string) => SERVICES.map((s) => current(s, value));

CheckTester.run(check, {
  pass: [
    { name: 'every service holds the same value', sources: store(all(NEW)) },
    {
      name: 'the same value in two providers of one service',
      sources: store([...all(NEW), current('gateway', NEW, 'env_file'), current('audit', NEW, 'vault')]),
    },
    {
      name: 'a rotation in progress: some services moved, every one accepts both',
      // identity and gateway run the new value with the old as PREVIOUS; the others still run the old one and already accept the new.
      sources: store([
        current('identity', NEW),
        current('gateway', NEW),
        current('api', OLD),
        current('audit', OLD),
        current('insight', OLD),
        previous('identity', OLD, daysAgo(2)),
        previous('gateway', OLD, daysAgo(2)),
        previous('api', NEW, daysAgo(2)),
        previous('audit', NEW, daysAgo(2)),
        previous('insight', NEW, daysAgo(2)),
      ]),
      notes: SERVICES.map((s) => ({ messageId: 'overlapActive', resource: `service=${s},secret=INTERNAL_SECRET_PREVIOUS`, severity: 'info' as const })),
      verify: (r) => {
        const n = r.findings.find((f) => f.resource.startsWith('service=api'));
        expect(n?.message).toMatch(/INTERNAL_SECRET_PREVIOUS set 2d ago/);
        expect(n?.evidence.groups).toEqual({ A: ['api (ssm)', 'audit (ssm)', 'insight (ssm)'], B: ['gateway (ssm)', 'identity (ssm)'] });
      },
    },
    {
      name: 'a PREVIOUS left after all services agree is a note while young',
      sources: store([...all(NEW), previous('api', OLD, daysAgo(3))]),
      notes: [{ messageId: 'overlapActive', resource: 'service=api,secret=INTERNAL_SECRET_PREVIOUS' }],
    },
    {
      name: 'the services option limits who must hold it',
      options: { services: ['identity', 'gateway'] },
      sources: store([current('identity', NEW), current('gateway', NEW)]),
    },
  ],
  fail: [
    {
      name: 'two groups that do not accept each other',
      sources: store([current('identity', NEW), current('gateway', NEW), current('api', OTHER), current('audit', NEW), current('insight', NEW, 'env_file')]),
      findings: [
        {
          messageId: 'drift',
          resource: 'secret=INTERNAL_SECRET',
          message: /A: audit \(ssm\), gateway \(ssm\), identity \(ssm\), insight \(env_file\); B: api \(ssm\)/,
          evidence: { groups: { A: ['audit (ssm)', 'gateway (ssm)', 'identity (ssm)', 'insight (env_file)'], B: ['api (ssm)'] } },
        },
      ],
    },
    {
      name: 'providers of one service disagree',
      sources: store([...all(NEW), current('gateway', OLD, 'env_file')]),
      findings: [{ messageId: 'drift', resource: 'secret=INTERNAL_SECRET', evidence: { groups: { B: ['gateway (env_file)'] } } }],
    },
    {
      name: 'a half-done overlap: one service does not accept the new value',
      sources: store([
        current('identity', NEW),
        current('gateway', OLD),
        current('api', OLD),
        current('audit', OLD),
        current('insight', OLD),
        previous('identity', OLD),
        previous('api', NEW),
        previous('audit', NEW),
        previous('insight', NEW),
      ]),
      findings: [{ messageId: 'drift', resource: 'secret=INTERNAL_SECRET', evidence: { previousMatches: { 'identity (ssm)': 'A', 'api (ssm)': 'B' } } }],
    },
    {
      name: 'a service without the secret',
      sources: store(SERVICES.filter((s) => s !== 'insight').map((s) => current(s, NEW))),
      findings: [{ messageId: 'missing', resource: 'service=insight,secret=INTERNAL_SECRET', message: /Service insight has no INTERNAL_SECRET/ }],
    },
    {
      name: 'nobody holds it',
      sources: store([]),
      findings: SERVICES.map((s) => ({ messageId: 'missing', resource: `service=${s},secret=INTERNAL_SECRET` })),
    },
    {
      name: 'an overlap older than allowed',
      sources: store([...all(NEW), previous('api', OLD, daysAgo(10)), previous('audit', OLD, daysAgo(2))]),
      findings: [
        { messageId: 'overlapTooLong', resource: 'service=api,secret=INTERNAL_SECRET_PREVIOUS', severity: 'medium', message: /for 10d, longer than the allowed 7d/ },
        { messageId: 'overlapActive', resource: 'service=audit,secret=INTERNAL_SECRET_PREVIOUS', severity: 'info' },
      ],
    },
    {
      name: 'maxOverlap is an option',
      options: { maxOverlap: '1d' },
      sources: store([...all(NEW), previous('api', OLD, daysAgo(2))]),
      findings: [{ messageId: 'overlapTooLong', resource: 'service=api,secret=INTERNAL_SECRET_PREVIOUS', message: /allowed 1d/ }],
    },
  ],
  error: [
    {
      name: 'the secret store is down',
      sources: () => ({ secrets: new FakeSecretStore({ holders: all(NEW) }).fail('holders') }),
      error: /connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
  ],
});

test('the report never carries a value or a fingerprint of one', async () => {
  const outcome = await runCase(check, {
    name: 'leak',
    sources: store([current('identity', NEW), current('gateway', OTHER), previous('api', OLD)]),
  });
  const text = JSON.stringify(outcome.result);
  for (const v of [NEW, OLD, OTHER]) expect(text).not.toContain(v.slice(0, 8));
  expect(text).not.toMatch(/hmac:/);
});
