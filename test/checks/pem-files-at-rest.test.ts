import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import check from '../../checks/pem-files-at-rest';
import { CheckTester, expectNoSecrets, runCase } from '../helpers/check-tester';
import { FakeAuditDb, FakeSecretStore, TestKey } from '../fakes';
import type { PrivateKeyFile } from '../../src/core/sources';
import { CompositeSecretStore, envAndPemBackends } from '../../src/sources/secrets';
import { KnownSecrets } from '../../src/core/secret';
import { PRIVATE_LABEL } from '../helpers/pem';

const receipt = TestKey.generate();
const root = TestKey.generate();
const old = TestKey.generate();
const stranger = TestKey.generate();

const envKeys = [
  { key: 'receipt' as const, fingerprint: receipt.fingerprint, publicKeyPem: receipt.publicKeyPem, privateKeyPem: receipt.privateKeyPem },
  { key: 'root' as const, fingerprint: root.fingerprint, publicKeyPem: root.publicKeyPem, privateKeyPem: root.privateKeyPem },
];
const file = (path: string, k: TestKey, configuredFor?: 'receipt' | 'root'): PrivateKeyFile => ({
  path,
  label: PRIVATE_LABEL,
  fingerprint: k.fingerprint,
  keyType: 'ed25519',
  ...(configuredFor ? { configuredFor } : {}),
});
const store = (files: PrivateKeyFile[], keys = envKeys) => new FakeSecretStore({ signingKeys: keys, privateKeyFiles: files });
const db = () => new FakeAuditDb({ historical: [{ fingerprint: old.fingerprint, publicKey: old.publicKeyPem, promotedAt: new Date('2026-06-01T00:00:00Z') }] });

CheckTester.run(check, {
  pass: [
    { name: 'no private key on the volume', sources: () => ({ secrets: store([]), postgres: db() }) },
    {
      name: 'the receipt key is not in env: its PEM is the only copy and is left to signing-key-source',
      sources: () => ({ secrets: store([file('/data/keys/receipt-signing.pem', receipt, 'receipt')], envKeys.slice(1)) }),
      notes: [{ messageId: 'fallbackInUse', resource: 'path=/data/keys/receipt-signing.pem' }],
    },
  ],
  fail: [
    {
      name: 'the current keys, a historical key and an unknown key left on the volume',
      sources: () => ({
        secrets: store([
          file('/data/keys/receipt-signing.pem', receipt, 'receipt'),
          file('/data/keys/root-signing.pem', root, 'root'),
          file('/data/keys/receipt-signing.pem.2026-06', old),
          file('/data/keys/test.pem', stranger),
        ]),
        postgres: db(),
      }),
      findings: [
        { messageId: 'current', resource: 'path=/data/keys/receipt-signing.pem', severity: 'high', message: /current receipt signing key \(sha256:[0-9a-f]{12}…\) remains at \/data\/keys\/receipt-signing.pem/ },
        { messageId: 'current', resource: 'path=/data/keys/root-signing.pem', evidence: { which: 'current', key: 'root', fingerprint: root.fingerprint } },
        { messageId: 'historical', resource: 'path=/data/keys/receipt-signing.pem.2026-06', severity: 'high' },
        { messageId: 'unknown', resource: 'path=/data/keys/test.pem', severity: 'medium' },
      ],
    },
    {
      name: 'without the audit database an old key is unknown',
      sources: () => ({ secrets: store([file('/data/keys/old.pem', old)]) }),
      findings: [{ messageId: 'unknown', resource: 'path=/data/keys/old.pem' }],
    },
    {
      name: 'an encrypted key cannot be identified but is still a key at rest',
      sources: () => ({ secrets: store([{ path: '/data/keys/enc.pem', label: 'ENCRYPTED PRIVATE KEY', problem: 'encrypted: its public key cannot be derived without the passphrase' }]) }),
      findings: [{ messageId: 'unreadable', resource: 'path=/data/keys/enc.pem', message: /ENCRYPTED PRIVATE KEY.*encrypted/ }],
    },
  ],
  error: [
    {
      name: 'the volume cannot be read',
      sources: () => ({ secrets: store([]).fail('privateKeyFiles') }),
      error: /secrets: privateKeyFiles: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the audit database is down while keys need classifying',
      sources: () => ({ secrets: store([file('/data/keys/x.pem', old)]), postgres: db().fail('historicalKeys') }),
      error: /postgres/,
    },
  ],
});

describe('the PEM files of the volume, read by the real source', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pem-at-rest-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('finds keys at the configured paths and beside them, by fingerprint, reading no more than the head', async () => {
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString();
    writeFileSync(join(keys, 'root-signing.pem'), root.privateKeyPem);
    writeFileSync(join(keys, 'old.pem.bak'), `# an old key\n${old.privateKeyPem}`);
    writeFileSync(join(keys, 'rsa.key'), rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
    writeFileSync(join(keys, 'enc.pem'), encrypted);
    writeFileSync(join(keys, 'README'), 'nothing secret here\n');
    writeFileSync(join(keys, 'public.pem'), receipt.publicKeyPem);
    writeFileSync(join(keys, 'late.pem'), 'x'.repeat(70 * 1024) + stranger.privateKeyPem); // past the head that is read
    symlinkSync(join(keys, 'root-signing.pem'), join(keys, 'current.pem'));
    const known = new KnownSecrets();
    const secrets = new CompositeSecretStore(
      envAndPemBackends({ pem_files: { receipt: join(keys, 'receipt-signing.pem'), root: join(keys, 'root-signing.pem') }, signing_key_service: 'audit' }, known),
      ['audit'],
    );
    const files = await secrets.privateKeyFiles();
    expect(files.map((f) => [f.path.slice(keys.length + 1), f.label, f.fingerprint ?? f.problem?.slice(0, 9), f.configuredFor ?? '-'])).toEqual([
      ['current.pem', PRIVATE_LABEL, root.fingerprint, '-'],
      ['enc.pem', `ENCRYPTED ${PRIVATE_LABEL}`, 'encrypted', '-'],
      ['old.pem.bak', PRIVATE_LABEL, old.fingerprint, '-'],
      ['root-signing.pem', PRIVATE_LABEL, root.fingerprint, 'root'],
      ['rsa.key', `RSA ${PRIVATE_LABEL}`, expect.stringMatching(/^sha256:[0-9a-f]{64}$/), '-'],
    ]);
    // The missing receipt PEM is absent, not an error; the root PEM is read as a signing key.
    expect(await secrets.signingKeys('receipt')).toEqual([]);
    expect((await secrets.signingKeys('root')).map((k) => k.fingerprint)).toEqual([root.fingerprint]);
    // What was read is registered for scrubbing, and nothing returned holds key material.
    expect(known.scrub(old.privateKeyPem)).not.toBe(old.privateKeyPem);
    expect(JSON.stringify(files)).not.toMatch(/PRIVATE KEY-----/);

    const o = await runCase(check, { name: 'real', sources: { secrets } });
    // No key is in env here (only the PEM paths are configured): the root PEM is its only copy.
    expect(o.result.findings.map((f) => `${f.messageId} ${f.resource.slice(f.resource.lastIndexOf('/') + 1)}`).sort()).toEqual([
      'fallbackInUse root-signing.pem',
      'unknown current.pem',
      'unknown old.pem.bak',
      'unknown rsa.key',
      'unreadable enc.pem',
    ]);
    expectNoSecrets(o, [root.privateKeyPem, old.privateKeyPem]);
  });

  test('a missing PEM directory holds no keys', async () => {
    const secrets = new CompositeSecretStore(envAndPemBackends({ pem_files: { receipt: join(dir, 'nope', 'r.pem') }, signing_key_service: 'audit' }, new KnownSecrets()), ['audit']);
    expect(await secrets.privateKeyFiles()).toEqual([]);
  });
});
