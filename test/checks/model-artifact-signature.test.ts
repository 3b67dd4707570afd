import { createHash } from 'node:crypto';
import check, { parseSignatureFile } from '../../checks/model-artifact-signature';
import { CheckTester } from '../helpers/check-tester';
import { FakeArtifactStore } from '../fakes/artifact-store';
import { FakeVaultSource, type TransitAnswers } from '../fakes/vault-source';
import type { TransitKeyInfo } from '../../src/core/sources';

const MODEL = 'resnet50/1/model.tar.gz';
const BYTES = Buffer.from('deterministic archive of resnet50 v1'.repeat(50));
const input = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const SIG = 'vault:v1:MEUCIQDk0+Zr1jWQ9Q6KpX1h3vB0lQ1lB2w5bq2lT8m3xYQ0ZgIgSd6bS2lq1oC1Ykd5ZQz8m0QKpGg2pQmJ0p1Zb2q3K4Y=';
const OTHER_SIG = 'vault:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

/** Vault's raw sign response, as Aegis's signers save it. */
const envelope = (signature: string) =>
  JSON.stringify({ request_id: '5b0c1c1e-0000-4000-8000-000000000001', lease_id: '', renewable: false, lease_duration: 0, data: { signature, key_version: 1 }, wrap_info: null, warnings: null, auth: null });

const signingKey = (over: Partial<TransitKeyInfo> = {}): TransitKeyInfo => ({ name: 'aegis-model-sign', type: 'ecdsa-p256', exportable: false, supportsSigning: true, latestVersion: 1, minDecryptionVersion: 1, ...over });

function vault(opts: { keys?: Record<string, TransitKeyInfo>; answers?: TransitAnswers } = {}): FakeVaultSource {
  return new FakeVaultSource({
    transitKeys: opts.keys ?? { 'transit/aegis-model-sign': signingKey() },
    transitAnswers: opts.answers ?? { 'transit/aegis-model-sign': { [`${input(BYTES)} ${SIG}`]: { valid: true } } },
  });
}

const sources = (objects: Record<string, string | Buffer>, v: () => FakeVaultSource = () => vault()) => () => ({
  artifacts: new FakeArtifactStore(objects),
  vault: v(),
});

CheckTester.run(check, {
  pass: [
    {
      name: "an artifact whose .sig.json is Vault's raw response and verifies",
      sources: sources({ [`dir:${MODEL}`]: BYTES, [`dir:${MODEL}.sig.json`]: envelope(SIG) }),
      verify: (r) => {
        const m = Object.fromEntries((r.measurements ?? []).map((x) => [x.name, x.value]));
        expect(m).toMatchObject({ model_artifacts: 1, model_artifacts_verified: 1, model_artifact_bytes_hashed: BYTES.length });
      },
    },
    {
      name: 'a flat {signature} in a .sig file, a matching .sha256, and S3 keys',
      sources: sources({
        [`s3:model-archives/demo/run-7/${MODEL}`]: BYTES,
        [`s3:model-archives/demo/run-7/${MODEL}.sig`]: JSON.stringify({ signature: SIG }),
        [`s3:model-archives/demo/run-7/${MODEL}.sha256`]: `${createHash('sha256').update(BYTES).digest('hex')}  model.tar.gz\n`,
      }),
    },
    {
      name: 'the signature verifies under the second of two keys (CI signs with aegis-cosign)',
      options: { keys: ['aegis-model-sign', 'aegis-cosign'] },
      sources: sources({ [`dir:${MODEL}`]: BYTES, [`dir:${MODEL}.sig.json`]: envelope(SIG) }, () =>
        vault({
          keys: { 'transit/aegis-model-sign': signingKey(), 'transit/aegis-cosign': signingKey({ name: 'aegis-cosign', type: 'rsa-4096' }) },
          answers: { 'transit/aegis-model-sign': { [`${input(BYTES)} ${SIG}`]: { refused: 'invalid signature: version is too new' } }, 'transit/aegis-cosign': { [`${input(BYTES)} ${SIG}`]: { valid: true } } },
        }),
      ),
    },
  ],
  fail: [
    {
      name: 'an unsigned artifact, an error body saved as the signature, and a signature by another key',
      sources: sources({
        'dir:bert/3/model.onnx': 'unsigned weights',
        'dir:safety/2/model.pt': 'weights signed while Vault said no',
        'dir:safety/2/model.pt.sig.json': JSON.stringify({ errors: ['1 error occurred:\n\t* permission denied\n\n'] }),
        [`dir:${MODEL}`]: BYTES,
        [`dir:${MODEL}.sig.json`]: envelope(OTHER_SIG),
      }),
      findings: [
        { messageId: 'missing', resource: 'artifact=dir:bert/3/model.onnx', severity: 'critical', message: /^Artifact dir:bert\/3\/model\.onnx has no signature file/ },
        { messageId: 'errorBody', resource: 'artifact=dir:safety/2/model.pt', message: /\.sig\.json holds Vault's error response/, evidence: { vaultErrors: 1, signatureFile: '.sig.json' } },
        {
          messageId: 'invalid',
          resource: `artifact=dir:${MODEL}`,
          message: /does not verify through Vault Transit under transit\/aegis-model-sign \(aegis-model-sign: does not match\)/,
          evidence: { keyVersion: 2, bytesHashed: BYTES.length },
        },
      ],
    },
    {
      name: 'signature files that are not Vault signatures, and a refused one',
      sources: sources({
        'dir:a.bin': 'a',
        'dir:a.bin.sig': Buffer.from([0x30, 0x82, 0x01, 0x0a, 0xff]), // an openssl RSA signature, not Vault's
        'dir:b.bin': 'b',
        'dir:b.bin.sig.json': JSON.stringify({ data: { signature: 'MEUCIQ-not-vault' } }),
        'dir:c.bin': 'c',
        'dir:c.bin.sig.json': JSON.stringify({ data: {} }),
        'dir:d.bin': 'd',
        'dir:d.bin.sig.json': 'x'.repeat(70_000),
        'dir:e.bin': 'e',
        'dir:e.bin.sig.json': envelope('vault:v9:AAAA'),
      }, () => vault({ answers: { 'transit/aegis-model-sign': { [`${input(Buffer.from('e'))} vault:v9:AAAA`]: { refused: 'invalid signature: version is too new <script>' } } } })),
      findings: [
        { messageId: 'malformed', resource: 'artifact=dir:a.bin', message: /\.sig is not a Vault Transit signature: not JSON/ },
        { messageId: 'malformed', resource: 'artifact=dir:b.bin', message: /not of the form vault:v<N>:<base64>/ },
        { messageId: 'malformed', resource: 'artifact=dir:c.bin', message: /no signature/ },
        { messageId: 'malformed', resource: 'artifact=dir:d.bin', message: /larger than 65536 bytes/ },
        { messageId: 'invalid', resource: 'artifact=dir:e.bin', message: /\(aegis-model-sign: a key version the key does not have\)/ },
      ],
      verify: (r) => expect(JSON.stringify(r)).not.toContain('<script>'),
    },
    {
      name: 'an artifact changed after its checksum was written (the signature still checked)',
      sources: sources({ [`dir:${MODEL}`]: BYTES, [`dir:${MODEL}.sig.json`]: envelope(SIG), [`dir:${MODEL}.sha256`]: `${'0'.repeat(64)}  model.tar.gz\n` }),
      findings: [{ messageId: 'checksumMismatch', resource: `artifact=dir:${MODEL},file=.sha256` }],
    },
    {
      name: 'a key that cannot sign (aes256-gcm96, as the setup script leaves it) verifies nothing; an exportable one is reported too',
      options: { keys: ['aegis-model-sign', 'aegis-cosign'] },
      sources: sources({ [`dir:${MODEL}`]: BYTES, [`dir:${MODEL}.sig.json`]: envelope(SIG) }, () =>
        vault({
          keys: {
            'transit/aegis-model-sign': signingKey({ type: 'aes256-gcm96', supportsSigning: false }),
            'transit/aegis-cosign': signingKey({ name: 'aegis-cosign', type: 'ecdsa-p256', exportable: true }),
          },
          answers: { 'transit/aegis-cosign': { [`${input(BYTES)} ${SIG}`]: { valid: true } } },
        }),
      ),
      findings: [
        { messageId: 'keyNotSigning', resource: 'key=transit/aegis-model-sign', message: /of type aes256-gcm96, which cannot sign/ },
        { messageId: 'keyExportable', resource: 'key=transit/aegis-cosign,problem=exportable', severity: 'high' },
      ],
    },
    {
      name: 'a key that does not exist',
      options: { mount: 'aegis-transit' },
      sources: sources({ [`dir:${MODEL}`]: BYTES, [`dir:${MODEL}.sig.json`]: envelope(SIG) }),
      findings: [{ messageId: 'keyMissing', resource: 'key=aegis-transit/aegis-model-sign', message: /^Transit key aegis-transit\/aegis-model-sign does not exist/ }],
      verify: (r) => expect(r.measurements?.find((m) => m.name === 'model_artifacts_verified')?.value).toBe(0),
    },
  ],
  error: [
    {
      name: 'no artifact at all is a misconfiguration, not a pass',
      sources: sources({ 'dir:README.sig.json': '{}' }),
      error: /^artifacts: dir:\/models: no model artifacts found/,
      code: 'AUDIT_ERR_BAD_DATA',
    },
    {
      name: 'the listing fails',
      sources: () => ({ artifacts: new FakeArtifactStore({}).fail('list'), vault: vault() }),
      error: /^artifacts: list: connection refused/,
    },
    {
      name: 'Vault fails while verifying',
      sources: () => ({ artifacts: new FakeArtifactStore({ [`dir:${MODEL}`]: BYTES, [`dir:${MODEL}.sig.json`]: envelope(SIG) }), vault: vault().fail('transitVerify') }),
      error: /^vault: transitVerify: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the key cannot be read',
      sources: () => ({ artifacts: new FakeArtifactStore({}), vault: vault().fail('transitKey') }),
      error: /^vault: transitKey: connection refused/,
    },
  ],
});

test('signature files: both layouts Aegis writes, and error bodies', () => {
  expect(parseSignatureFile(Buffer.from(envelope(SIG)))).toEqual({ signature: SIG, version: 1 });
  expect(parseSignatureFile(Buffer.from(JSON.stringify({ signature: 'vault:v12:QUJD' })))).toEqual({ signature: 'vault:v12:QUJD', version: 12 });
  expect(parseSignatureFile(Buffer.from('{"errors":[]}'))).toEqual({ errorBody: 0 });
  expect(parseSignatureFile(Buffer.from('{"errors":["x"],"data":{"signature":"vault:v1:QUJD"}}'))).toEqual({ errorBody: 1 });
  expect(parseSignatureFile(Buffer.from('[1]'))).toEqual({ malformed: 'not a JSON object' });
  expect(parseSignatureFile(Buffer.from(JSON.stringify({ signature: 'vault:v1:QUJD\n' })))).toMatchObject({ malformed: expect.any(String) });
});
