import check from '../../checks/signing-key-fingerprint';
import { CheckTester, runCase } from '../helpers/check-tester';
import { AuditLogBuilder, FakeAuditDb, FakeSecretStore, TestKey } from '../fakes';

const receipt = TestKey.generate();
const root = TestKey.generate();
const stale = TestKey.generate();
const foreign = TestKey.generate();

/** 30 rows and 2 roots signed by `receipt` / `root`. */
function chain(): AuditLogBuilder {
  const b = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(15);
  b.root();
  b.receipts(15);
  b.root();
  return b;
}

/** The log after a rotation from `stale` to `receipt` (stale signed the older rows). */
function rotated(): AuditLogBuilder {
  const b = new AuditLogBuilder({ receiptKey: stale, rootKey: root }).receipts(10);
  b.rotate('receipt', receipt);
  b.receipts(10);
  return b;
}

const db = (b: AuditLogBuilder) => new FakeAuditDb(b.snapshot());

/** A receipt rotation from `stale` to `receipt` just recorded: the rotation row (signed by stale) is the newest row. */
function justRotated(): AuditLogBuilder {
  const b = new AuditLogBuilder({ receiptKey: stale, rootKey: root }).receipts(10);
  b.rotate('receipt', receipt);
  return b;
}

CheckTester.run(check, {
  pass: [
    {
      name: 'receipt and root keys in every provider match the newest rows and roots',
      sources: () => ({
        postgres: db(chain()),
        secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), receipt.holder('receipt', 'ssm'), root.holder('root'), root.holder('root', 'pem_file')] }),
      }),
    },
    {
      name: 'no root key configured: only the receipt key is compared',
      sources: () => ({ postgres: db(chain()), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }) }),
    },
    {
      name: 'a rotation within the recent rows: the newest row decides',
      sources: () => ({ postgres: db(rotated()), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }) }),
    },
    {
      name: 'right after a rotation the new key is deployed and nothing was signed since: a note, not a mismatch',
      sources: () => ({ postgres: db(justRotated()), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }) }),
      notes: [{ messageId: 'rotationPending', resource: 'key=receipt,source=env_file', message: /new key of the rotation recorded in audit row 11; nothing has been signed since/ }],
    },
    {
      name: 'a root key but no roots yet cannot be compared and is left alone',
      sources: () => ({
        postgres: new FakeAuditDb({ rows: new AuditLogBuilder({ receiptKey: receipt }).receipts(3).rows }),
        secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), foreign.holder('root')] }),
      }),
    },
  ],
  fail: [
    {
      name: 'rows keep coming signed by the old key after a rotation: the deployed new key is not in use',
      sources: () => {
        const b = justRotated();
        b.receiptKey = stale;
        b.receipts(3);
        return { postgres: db(b), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }) };
      },
      findings: [{ messageId: 'mismatch', resource: 'key=receipt,source=env_file' }],
    },
    {
      name: 'a key that is not the rotation\'s new key is a mismatch even right after a rotation',
      sources: () => ({ postgres: db(justRotated()), secrets: new FakeSecretStore({ signingKeys: [foreign.holder('receipt')] }) }),
      findings: [{ messageId: 'mismatch', resource: 'key=receipt,source=env_file' }],
    },
    {
      name: 'a stale copy in the PEM file after a rotation',
      sources: () => ({
        postgres: db(rotated()),
        secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), stale.holder('receipt', 'pem_file')] }),
      }),
      findings: [
        {
          messageId: 'mismatch',
          resource: 'key=receipt,source=pem_file',
          severity: 'critical',
          message: new RegExp(`receipt signing key in pem_file has fingerprint ${stale.fingerprint.slice(0, 19)}.*signed by ${receipt.fingerprint.slice(0, 19)}`),
          evidence: { configuredFingerprints: [stale.fingerprint], currentFingerprint: receipt.fingerprint, configuredLastSigned: 11 /* the key_rotated row, signed by the outgoing key */, newest: { id: 21 } },
        },
      ],
    },
    {
      name: 'a key that signed none of the rows, in two providers',
      sources: () => ({
        postgres: db(chain()),
        secrets: new FakeSecretStore({ signingKeys: [foreign.holder('receipt', 'env_file'), foreign.holder('receipt', 'ssm'), root.holder('root')] }),
      }),
      findings: [
        { messageId: 'mismatch', resource: 'key=receipt,source=env_file', evidence: { configuredLastSigned: null } },
        { messageId: 'mismatch', resource: 'key=receipt,source=ssm' },
      ],
    },
    {
      name: 'the root key differs from the newest root',
      sources: () => ({
        postgres: db(chain()),
        secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), foreign.holder('root', 'vault')] }),
      }),
      findings: [{ messageId: 'mismatch', resource: 'key=root,source=vault', message: /most recent transparency roots \(newest 2\)/ }],
    },
  ],
  error: [
    {
      name: 'no receipt key configured anywhere',
      sources: () => ({ postgres: db(chain()), secrets: new FakeSecretStore({ signingKeys: [root.holder('root')] }) }),
      error: /no receipt signing key is configured in any secret provider/,
      code: 'AUDIT_ERR_CONFIG',
    },
    {
      name: 'an empty audit_log',
      sources: () => ({ postgres: new FakeAuditDb(), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }) }),
      error: /audit_log: the table is empty/,
      code: 'AUDIT_ERR_BAD_DATA',
    },
    {
      name: 'postgres is down',
      sources: () => ({ postgres: db(chain()).fail('recentRows'), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }) }),
      error: /postgres: recentRows: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the secret store is down',
      sources: () => ({ postgres: db(chain()), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt')] }).fail('signingKeys') }),
      // core scrubText reads "secrets: …" as a secret pair and redacts the method name (reported upstream).
      error: /^secrets: .*connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
  ],
});

test('recentRows bounds what is read: an old key beyond it is irrelevant', async () => {
  const b = rotated();
  const fake = db(b);
  const spy = jest.spyOn(fake, 'recentRows');
  const { result } = await runCase(check, {
    name: 'bounded',
    options: { recentRows: 5 },
    sources: { postgres: fake, secrets: new FakeSecretStore({ signingKeys: [stale.holder('receipt')] }) },
  });
  expect(spy).toHaveBeenCalledWith(5);
  expect(result.status).toBe('fail');
  expect(result.findings[0].evidence).toMatchObject({ examined: 5, configuredLastSigned: null });
});

test('skipped when postgres is not configured', async () => {
  const { result } = await runCase(check, { name: 's', sources: { secrets: new FakeSecretStore() } });
  expect(result.status).toBe('skipped');
});
