import { describeError, scrubText, scrubUrl } from '../../src/core/redact';
import { fakePrivatePem } from '../helpers/pem';

test('URLs lose credentials and query strings but keep host and path', () => {
  expect(scrubUrl('postgres://auditor:pa55word@db.internal:5432/audit?sslmode=require')).toBe('postgres://***@db.internal:5432/audit?…');
  expect(scrubUrl('https://vault:8200/v1/secret/data/x?token=abc')).toBe('https://vault:8200/v1/secret/data/x?…');
});

test.each([
  ['Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig', 'eyJhbGci'],
  ['vault token hvs.CAESIJ7abcdefghijklmnopqrstu was rejected', 'CAESIJ7abc'],
  ['key AKIAABCDEFGHIJKLMNOP used', 'AKIAABCDEFGHIJKLMNOP'],
  ['caller acp_live_9f8e7d6c5b4a', '9f8e7d6c'],
  ['INTERNAL_SECRET=abcdef0123456789 in env', 'abcdef0123456789'],
  ['password: "correct horse battery"', 'correct horse'],
  [fakePrivatePem('MC4CAQAwBQYDK2VwBCIEI').trimEnd(), 'MC4CAQAw'],
])('scrubText removes credentials from %j', (input, secret) => {
  expect(scrubText(input)).not.toContain(secret);
});

test('describeError is one line, bounded, scrubbed', () => {
  const e = new Error('connect failed for postgres://u:topsecretpw@h/db?x=1\n  at foo\n'.repeat(30));
  const d = describeError(e);
  expect(d).not.toContain('topsecretpw');
  expect(d).not.toContain('\n');
  expect(d.length).toBeLessThanOrEqual(500);
  expect(describeError('plain')).toBe('plain');
  expect(describeError({})).toBe('unknown error');
});

test('describeError reads errors from another realm and the inner errors of an AggregateError', () => {
  const foreign = { name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:5432', code: 'ECONNREFUSED' };
  expect(describeError(foreign)).toBe('connect ECONNREFUSED 127.0.0.1:5432');
  const agg = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
  expect(describeError(agg)).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
  expect(describeError({ code: 'ETIMEDOUT', message: '' })).toBe('ETIMEDOUT');
});
