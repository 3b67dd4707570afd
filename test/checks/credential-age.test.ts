import { createHash } from 'node:crypto';
import check from '../../checks/credential-age';
import type { ApiKeyRow } from '../../src/core/sources';
import { CheckTester, DEFAULT_NOW, runCase } from '../helpers/check-tester';
import { AuditLogBuilder, FakeAuditDb } from '../fakes';
const digest8 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

const daysAgo = (d: number) => new Date(DEFAULT_NOW.getTime() - d * 86_400_000);
const key = (id: string, age: number, revoked = false): ApiKeyRow => ({ id, createdAt: daysAgo(age), lastUsedAt: daysAgo(1), revokedAt: revoked ? daysAgo(1) : null });

/** An audit log that began `began` days ago, with rotation rows at the given ages. */
function log(began: number, rotations: { secret?: string; key?: 'receipt' | 'root'; age: number }[] = []): AuditLogBuilder {
  const b = new AuditLogBuilder({ start: daysAgo(began) });
  b.append('receipt_issued', { n: 1 }, { at: daysAgo(began) });
  for (const r of [...rotations].sort((x, y) => y.age - x.age)) {
    if (r.secret) b.secretRotated(r.secret, daysAgo(r.age));
    else if (r.key) b.rotate(r.key, undefined, daysAgo(r.age));
  }
  return b;
}

const fresh = [
  { secret: 'JWT_SECRET_KEY', age: 10 },
  { secret: 'INTERNAL_SECRET', age: 80 },
  { key: 'receipt' as const, age: 300 },
  { key: 'root' as const, age: 364 },
];

const db = (b: AuditLogBuilder, apiKeys: ApiKeyRow[] = []) => () => ({ postgres: new FakeAuditDb({ rows: b.snapshot().rows, apiKeys }) });

CheckTester.run(check, {
  pass: [
    { name: 'a young deployment: nothing is old yet', sources: db(log(30), [key('k1', 29)]) },
    { name: 'every rotation within its policy; old keys revoked', sources: db(log(1000, fresh), [key('k1', 89), key('k2', 400, true)]) },
    { name: 'an empty audit log and no keys', sources: () => ({ postgres: new FakeAuditDb() }) },
    {
      name: 'policies are options',
      options: { rotationPolicies: { JWT_SECRET_KEY: '30d' }, apiKeyMaxAge: '400d' },
      sources: db(log(1000, [{ secret: 'JWT_SECRET_KEY', age: 20 }]), [key('k1', 399)]),
    },
  ],
  fail: [
    {
      name: 'old unrevoked API keys',
      sources: db(log(30), [key('k-old', 91), key('k-new', 10), key('k-revoked', 200, true), key('k 2', 120)]),
      findings: [
        { messageId: 'apiKeyOld', resource: 'api_key=k-old', severity: 'medium', message: /API key k-old was created 91 days ago .* the limit is 90 days/, evidence: { oldKeysTotal: 2 } },
        { messageId: 'apiKeyOld', resource: 'api_key="k 2"' },
      ],
      verify: (r) => expect(r.measurements).toContainEqual(expect.objectContaining({ name: 'api_keys_over_age', value: 2 })),
    },
    {
      name: 'a very long API key id is bounded in the message and the resource, kept distinct by a digest',
      sources: db(log(30), [key('ak_' + 'z'.repeat(3000), 100)]),
      findings: [{ messageId: 'apiKeyOld', resource: `api_key=ak_${'z'.repeat(196)}…~${digest8('ak_' + 'z'.repeat(3000))}`, message: /^API key ak_z+… was created 100 days ago/ }],
      verify: (r) => expect(r.findings[0].message.length).toBeLessThan(300),
    },
    {
      name: 'rotations overdue, by secret_rotated and key_rotated rows',
      sources: db(log(1000, [
        { secret: 'JWT_SECRET_KEY', age: 120 },
        { secret: 'INTERNAL_SECRET', age: 10 },
        { key: 'receipt', age: 400 },
        { key: 'root', age: 100 },
      ])),
      findings: [
        { messageId: 'rotationOverdue', resource: 'secret=JWT_SECRET_KEY', message: /JWT_SECRET_KEY was last rotated 120 days ago .*every 90 days/ },
        { messageId: 'rotationOverdue', resource: 'key=receipt', message: /The receipt signing key was last rotated 400 days ago/ },
      ],
    },
    {
      name: 'the latest rotation counts',
      sources: db(log(1000, [...fresh.filter((f) => f.secret !== 'INTERNAL_SECRET'), { secret: 'INTERNAL_SECRET', age: 500 }, { secret: 'INTERNAL_SECRET', age: 95 }])),
      findings: [{ messageId: 'rotationOverdue', resource: 'secret=INTERNAL_SECRET', evidence: { ageDays: 95, measuredFrom: 'last rotation row' } }],
    },
    {
      name: 'never rotated: the age runs from the first audit row',
      sources: db(log(200, [{ secret: 'JWT_SECRET_KEY', age: 5 }])),
      findings: [
        { messageId: 'rotationOverdue', resource: 'secret=INTERNAL_SECRET', message: /has never been rotated, and the audit log began 200 days ago/, evidence: { measuredFrom: 'first audit row (never rotated)', row: 1 } },
      ],
    },
  ],
  error: [
    {
      name: 'api_keys cannot be read',
      sources: () => ({ postgres: new FakeAuditDb().fail('apiKeys') }),
      // "apiKeys: …" reads as a secret pair to the core error scrubber, so only the source and outcome are stable.
      error: /^postgres: .*refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'rotation rows cannot be read',
      sources: () => ({ postgres: new FakeAuditDb().fail('rowsByAction') }),
      error: /rowsByAction: connection refused/,
    },
  ],
});

test('apiKeyOld findings are capped and the total is kept', async () => {
  const keys = Array.from({ length: 12 }, (_, i) => key(`k${i}`, 100 + i));
  const { result } = await runCase(check, { name: 'cap', options: { maxFindings: 5 }, sources: db(log(10), keys) });
  expect(result.findings).toHaveLength(5);
  expect(result.findings[0].evidence.oldKeysTotal).toBe(12);
});
