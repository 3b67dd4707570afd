import check from '../../checks/historical-keys';
import { CheckTester } from '../helpers/check-tester';
import { AuditLogBuilder, FakeAuditDb, TestKey } from '../fakes';

const k1 = TestKey.generate();
const k2 = TestKey.generate();
const k3 = TestKey.generate();
const r1 = TestKey.generate();
const r2 = TestKey.generate();

/** Rows signed by k1, rotated to k2; roots by r1 throughout. */
function oneRotation(): AuditLogBuilder {
  const b = new AuditLogBuilder({ receiptKey: k1, rootKey: r1 }).receipts(5);
  b.root();
  b.rotate('receipt', k2);
  b.receipts(5);
  b.root();
  return b;
}

const at = new Date('2026-10-01T00:00:00Z');

CheckTester.run(check, {
  pass: [
    { name: 'never rotated, empty table', sources: () => ({ postgres: new FakeAuditDb(new AuditLogBuilder({ receiptKey: k1 }).receipts(5).snapshot()) }) },
    { name: 'empty audit log', sources: () => ({ postgres: new FakeAuditDb() }) },
    {
      name: 'rotated, and the old key is recorded',
      sources: () => ({ postgres: new FakeAuditDb({ ...oneRotation().snapshot(), historical: [k1.historical(at)] }) }),
    },
    {
      name: 'a key rotated out and later rotated back in is current again',
      sources: () => {
        const b = oneRotation();
        b.rotate('receipt', k1);
        b.receipts(2);
        return { postgres: new FakeAuditDb({ ...b.snapshot(), historical: [k2.historical(at)] }) };
      },
    },
    {
      name: 'receipt and root rotated, both old keys recorded',
      sources: () => {
        const b = oneRotation();
        b.rotate('root', r2);
        b.receipts(2);
        b.root();
        return { postgres: new FakeAuditDb({ ...b.snapshot(), historical: [k1.historical(at), r1.historical(at)] }) };
      },
    },
  ],
  fail: [
    {
      name: 'rotation happened and the table is empty: one finding, not one per key',
      sources: () => ({ postgres: new FakeAuditDb(oneRotation().snapshot()) }),
      findings: [
        {
          messageId: 'emptyAfterRotation',
          resource: 'table=transparency_historical_keys',
          message: /transparency_historical_keys is empty.*1 non-current fingerprint/,
          evidence: { nonCurrentFingerprints: [k1.fingerprint], rotations: 1 },
        },
      ],
    },
    {
      // The rotation row is signed by the outgoing key, so until the new key signs a row the
      // newest row still carries the old fingerprint: the rotation row says it is not current.
      name: 'a rotation row is the newest row and the table is empty',
      sources: () => {
        const b = new AuditLogBuilder({ receiptKey: k1, rootKey: r1 }).receipts(5);
        b.rotate('receipt', k2);
        return { postgres: new FakeAuditDb(b.snapshot()) };
      },
      findings: [{ messageId: 'emptyAfterRotation', resource: 'table=transparency_historical_keys', evidence: { nonCurrentFingerprints: [k1.fingerprint], rotations: 1 } }],
    },
    {
      name: 'a root rotated before any root was signed by the new key',
      sources: () => {
        const b = oneRotation();
        b.rotate('root', r2);
        return { postgres: new FakeAuditDb({ ...b.snapshot(), historical: [k1.historical(at)] }) };
      },
      findings: [{ messageId: 'orphaned', resource: `fingerprint=${r1.fingerprint}`, message: /signed 2 root\(s\)/ }],
    },
    {
      name: 'the table name is the configured one (sources.postgres.tables.historical_keys)',
      sources: () => ({ postgres: Object.assign(new FakeAuditDb(oneRotation().snapshot()), { historicalKeysTable: 'hist_keys' }) }),
      findings: [{ messageId: 'emptyAfterRotation', resource: 'table=hist_keys' }],
    },
    {
      name: 'two fingerprints signed rows without any rotation row',
      sources: () => {
        const b = new AuditLogBuilder({ receiptKey: k1 }).receipts(3);
        b.receiptKey = k2;
        b.receipts(3);
        return { postgres: new FakeAuditDb({ rows: b.rows, historical: [k3.historical()] }) };
      },
      findings: [{ messageId: 'orphaned', resource: `fingerprint=${k1.fingerprint}`, message: /signed 3 audit row\(s\) \(ids 1–3\)/ }],
    },
    {
      name: 'a rotated-out key known only from the rotation row',
      sources: () => {
        const b = new AuditLogBuilder({ receiptKey: k2 }).receipts(2);
        b.append('key_rotated', { key: 'receipt', old_fingerprint: k1.fingerprint, new_fingerprint: k2.fingerprint });
        return { postgres: new FakeAuditDb({ rows: b.rows, historical: [k3.historical()] }) };
      },
      findings: [{ messageId: 'orphaned', resource: `fingerprint=${k1.fingerprint}`, message: /rotated out in row 3/ }],
    },
    {
      name: 'an old root key missing while the receipt key is recorded',
      sources: () => {
        const b = oneRotation();
        b.rotate('root', r2);
        b.root();
        return { postgres: new FakeAuditDb({ ...b.snapshot(), historical: [k1.historical(at)] }) };
      },
      findings: [{ messageId: 'orphaned', resource: `fingerprint=${r1.fingerprint}`, message: /signed 2 root\(s\)/ }],
    },
    {
      name: 'an entry whose public key is another key',
      sources: () => ({ postgres: new FakeAuditDb({ ...oneRotation().snapshot(), historical: [{ fingerprint: k1.fingerprint, publicKey: k3.publicKeyPem, promotedAt: at }] }) }),
      findings: [
        {
          messageId: 'publicKeyMismatch',
          resource: `fingerprint=${k1.fingerprint}`,
          message: new RegExp(`hashes to ${k3.fingerprint.slice(0, 19)}`),
          evidence: { computedFingerprint: k3.fingerprint },
        },
      ],
    },
    {
      name: 'a malformed public key PEM is a finding naming the parse error',
      sources: () => ({
        postgres: new FakeAuditDb({
          rows: new AuditLogBuilder({ receiptKey: k2 }).receipts(2).rows,
          historical: [
            { fingerprint: k1.fingerprint, publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA!!notbase64\n-----END PUBLIC KEY-----\n', promotedAt: at },
            { fingerprint: k3.fingerprint, publicKey: 'garbage', promotedAt: null },
          ],
        }),
      }),
      findings: [
        { messageId: 'publicKeyMismatch', resource: `fingerprint=${k1.fingerprint}`, evidence: { computedFingerprint: null, problem: expect.stringMatching(/malformed PEM public key/) } },
        { messageId: 'publicKeyMismatch', resource: `fingerprint=${k3.fingerprint}`, message: /not an SPKI PEM public key/ },
      ],
      verify: (r) => {
        // No key material is echoed.
        expect(JSON.stringify(r.findings)).not.toContain('notbase64');
      },
    },
  ],
  error: [
    {
      name: 'postgres is down',
      sources: () => ({ postgres: new FakeAuditDb(oneRotation().snapshot()).fail('historicalKeys') }),
      error: /postgres: historicalKeys: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
  ],
});
