/**
 * The artifact locations against a real directory and, through the real @aws-sdk/client-s3,
 * the S3 emulator; then model-artifact-signature end to end: artifacts signed over HTTP by the
 * Vault emulator's Transit (as Aegis's CI does it), verified by the check through node-vault.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import check from '../../checks/model-artifact-signature';
import { artifactsSchema, vaultSchema } from '../../src/config/schema';
import { KnownSecrets } from '../../src/core/secret';
import type { ArtifactObject } from '../../src/core/sources';
import { S3Emulator, VaultEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { ArtifactLocations } from '../../src/sources/artifacts';
import { NodeVaultSource, VaultClientHandle } from '../../src/sources/vault';
import { runCase } from '../helpers/check-tester';

const CREDS = { access_key_id: 'ART_TEST_AKID', secret_access_key: 'ART_TEST_SECRET' };
process.env.ART_TEST_AKID = 'AKIDTEST';
process.env.ART_TEST_SECRET = 'secret';

let root: string;
let s3: S3Emulator;
let s3run: RunningEmulator;
let vault: VaultEmulator;
let vaultRun: RunningEmulator;
const opened: { close(): void }[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'artifacts-'));
  s3 = new S3Emulator({ maxKeysCap: 2 });
  vault = new VaultEmulator();
  [s3run, vaultRun] = await Promise.all([s3.start(), vault.start()]);
});
afterAll(async () => {
  for (const o of opened) o.close();
  await Promise.all([s3run.close(), vaultRun.close()]);
  rmSync(root, { recursive: true, force: true });
});

function locations(raw: Record<string, unknown>): ArtifactLocations {
  const a = new ArtifactLocations(artifactsSchema.parse(raw));
  opened.push(a);
  return a;
}

const s3cfg = (over: Record<string, unknown> = {}) => ({ region: 'us-east-1', endpoint: s3run.url, bucket: 'aegis-models', prefix: 'model-archives/', force_path_style: true, credentials_env: CREDS, max_attempts: 1, timeout: '15s', ...over });

async function list(a: ArtifactLocations): Promise<ArtifactObject[]> {
  const out: ArtifactObject[] = [];
  for await (const o of a.list()) out.push(o);
  return out;
}

async function bytesOf(a: ArtifactLocations, o: ArtifactObject): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of a.stream(o)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString();
}

describe('a directory', () => {
  test('lists every file (symlinks inside once), minus excludes; streams and reads small files', async () => {
    const dir = join(root, 'models');
    mkdirSync(join(dir, 'resnet/1'), { recursive: true });
    writeFileSync(join(dir, 'resnet/1/model.tar.gz'), 'weights');
    writeFileSync(join(dir, 'resnet/1/model.tar.gz.sig.json'), '{"data":{}}');
    writeFileSync(join(dir, 'README.md'), 'docs');
    symlinkSync('resnet', join(dir, 'latest'));
    const a = locations({ dir, exclude: ['*.md'] });
    const objs = await list(a);
    expect(objs.map((o) => `${o.store}:${o.key}:${o.size}`)).toEqual(['dir:resnet/1/model.tar.gz:7', 'dir:resnet/1/model.tar.gz.sig.json:11']);
    expect(await bytesOf(a, objs[0])).toBe('weights');
    expect((await a.readSmall({ store: 'dir', key: 'resnet/1/model.tar.gz.sig.json' }, 100))?.toString()).toBe('{"data":{}}');
    expect(await a.readSmall({ store: 'dir', key: 'nope.sig.json' }, 100)).toBeUndefined();
    await expect(a.readSmall({ store: 'dir', key: 'resnet/1/model.tar.gz' }, 3)).rejects.toMatchObject({ code: 'AUDIT_ERR_BAD_DATA' });
    await expect(list(locations({ dir: join(root, 'missing') }))).rejects.toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', message: expect.stringMatching(/^artifacts: reading directory .*missing: not found/) });
  });
});

describe('an S3 prefix through @aws-sdk/client-s3', () => {
  beforeAll(() => {
    s3.createBucket('aegis-models');
    for (let i = 0; i < 5; i++) s3.putObject({ bucket: 'aegis-models', key: `model-archives/run-${i}/model.tar.gz`, body: `weights ${i}` });
    s3.putObject({ bucket: 'aegis-models', key: 'model-archives/<b>&x/model.pt', body: 'hostile' });
    s3.putObject({ bucket: 'aegis-models', key: 'model-archives/run-0/model.tar.gz.sig.json', body: '{"data":{"signature":"vault:v1:QUJD"}}' });
    s3.putObject({ bucket: 'aegis-models', key: 'elsewhere/model.tar.gz', body: 'not under the prefix' });
  });

  test('lists under the prefix across pages, keys relative to it; streams bodies; reads small objects with a range', async () => {
    const a = locations({ s3: s3cfg() });
    const objs = await list(a);
    expect(objs.map((o) => o.key)).toEqual(['<b>&x/model.pt', ...[0, 1, 2, 3, 4].flatMap((i) => [`run-${i}/model.tar.gz`, ...(i === 0 ? ['run-0/model.tar.gz.sig.json'] : [])])]);
    expect(objs[0]).toMatchObject({ store: 's3', size: 7, location: 's3://aegis-models/model-archives/<b>&x/model.pt' });
    expect(await bytesOf(a, objs[0])).toBe('hostile');
    expect((await a.readSmall({ store: 's3', key: 'run-0/model.tar.gz.sig.json' }, 1000))?.toString()).toContain('vault:v1:');
    expect(await a.readSmall({ store: 's3', key: 'run-9/model.tar.gz.sig.json' }, 1000)).toBeUndefined();
    await expect(a.readSmall({ store: 's3', key: 'run-0/model.tar.gz.sig.json' }, 10)).rejects.toMatchObject({ code: 'AUDIT_ERR_BAD_DATA' });
    expect(a.locations()).toEqual(['s3://aegis-models/model-archives/']);
  });

  test('a missing bucket or denied access is an error naming the bucket, never an empty listing', async () => {
    await expect(list(locations({ s3: s3cfg({ bucket: 'no-such-bucket' }) }))).rejects.toMatchObject({
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
      message: expect.stringMatching(/^artifacts: listing s3:\/\/no-such-bucket\/model-archives\/: .*specified bucket does not exist/),
    });
    s3.denyBucket('aegis-models');
    try {
      await expect(list(locations({ s3: s3cfg() }))).rejects.toMatchObject({ reason: 'forbidden', message: expect.stringMatching(/access denied/) });
    } finally {
      s3.denyBucket('aegis-models', false);
    }
  });
});

describe('model-artifact-signature through the real clients', () => {
  test('signed through Transit over HTTP, verified through node-vault; tampered, unsigned and error-body artifacts fail', async () => {
    vault.createTransitKey('aegis-cosign', { type: 'rsa-2048' });
    vault.putPolicy('auditor', { 'transit/keys/aegis-cosign': ['read'], 'transit/verify/aegis-cosign': ['update'] });
    const auditor = vault.createToken({ policies: ['auditor'], ttl: 600 });
    const signer = vault.createToken({ policies: [], ttl: 600 }); // no sign grant: Vault answers 403
    const sign = async (token: string, body: Buffer) =>
      (
        await fetch(`${vaultRun.url}/v1/transit/sign/aegis-cosign`, {
          method: 'POST',
          headers: { 'X-Vault-Token': token },
          body: JSON.stringify({ input: createHash('sha256').update(body).digest('base64') }),
        })
      ).text();
    s3.createBucket('signed');
    const put = (key: string, body: string | Buffer) => s3.putObject({ bucket: 'signed', key: `model-archives/demo/${key}`, body });
    const good = Buffer.alloc(3 * 1024 * 1024, 7);
    put('good/model.tar.gz', good);
    put('good/model.tar.gz.sig', await sign(vault.rootToken, good));
    put('tampered/model.tar.gz', 'tampered weights');
    put('tampered/model.tar.gz.sig.json', await sign(vault.rootToken, Buffer.from('original weights')));
    put('unsigned/model.tar.gz', 'weights');
    put('denied/model.tar.gz', 'weights');
    put('denied/model.tar.gz.sig.json', await sign(signer.id, Buffer.from('weights')));

    const tokenFile = join(root, 'auditor-token');
    writeFileSync(tokenFile, `${auditor.id}\n`);
    const handle = new VaultClientHandle(vaultSchema.parse({ address: vaultRun.url, token_file: tokenFile, timeout: 15_000, max_attempts: 1 }), new KnownSecrets());
    opened.push(handle);
    const artifacts = locations({ s3: s3cfg({ bucket: 'signed', prefix: 'model-archives/demo' }) });
    const { result } = await runCase(check, { name: 'e2e', options: { keys: ['aegis-cosign'] }, sources: { artifacts, vault: new NodeVaultSource(handle) }, timeoutMs: 60_000 });
    expect(result.error).toBeNull();
    expect(result.findings.map((f) => `${f.messageId} ${f.resource}`).sort()).toEqual([
      'errorBody artifact=s3:denied/model.tar.gz',
      'invalid artifact=s3:tampered/model.tar.gz',
      'missing artifact=s3:unsigned/model.tar.gz',
    ]);
    const m = Object.fromEntries((result.measurements ?? []).map((x) => [x.name, x.value]));
    expect(m).toMatchObject({ model_artifacts: 4, model_artifacts_verified: 1 });
    expect(m.model_artifact_bytes_hashed).toBe(good.length + 'tampered weights'.length);
    expect(JSON.stringify(result)).not.toContain(auditor.id);
  }, 60_000);
});
