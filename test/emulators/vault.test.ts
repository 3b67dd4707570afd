import { constants, createHash, createPublicKey, verify } from 'node:crypto';
import { VaultEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { rejection, vaultClient } from './clients';

let emu: VaultEmulator;
let running: RunningEmulator;
let clock: number;

beforeEach(async () => {
  clock = Date.parse('2024-07-07T10:00:00Z');
  emu = new VaultEmulator({ now: () => clock });
  emu.putKv('secret', 'aegis/prod/db', { password: 'hunter2' }, { createdTime: new Date(clock - 60_000) });
  emu.putKv('secret', 'aegis/prod/db', { password: 'correct horse' });
  emu.putKv('secret', 'aegis/prod/api/token', { value: 't0' });
  emu.putKv('secret', 'aegis/prod/old', { value: 'gone' }, { deleted: true });
  emu.putKv('kv1', 'legacy', { a: 'b' }, { kvVersion: 1 });
  emu.putPolicy('audit', { 'secret/data/aegis/prod/*': ['read'], 'secret/metadata/aegis/*': ['list', 'read'] });
  running = await emu.start();
});

afterEach(async () => {
  await running.close();
});

function responseOf(err: Record<string, unknown>): { statusCode: number; body: unknown } {
  const res = err.response;
  if (typeof res !== 'object' || res === null) throw new Error('no response on the error');
  return res as { statusCode: number; body: unknown };
}

describe('KV v2 through node-vault', () => {
  it('reads the full envelope with data.data and data.metadata', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const res = await vault.read('secret/data/aegis/prod/db');
    expect(Object.keys(res).sort()).toEqual(
      ['auth', 'data', 'lease_duration', 'lease_id', 'mount_type', 'renewable', 'request_id', 'warnings', 'wrap_info'].sort(),
    );
    expect(res.data.data).toEqual({ password: 'correct horse' });
    expect(res.data.metadata).toMatchObject({ version: 2, deletion_time: '', destroyed: false, custom_metadata: null });
    expect(res.mount_type).toBe('kv');
    const v1 = await vault.read('secret/data/aegis/prod/db?version=1');
    expect(v1.data.data).toEqual({ password: 'hunter2' });
    expect(v1.data.metadata.created_time).toBe('2024-07-07T09:59:00.000Z');
  });

  it('writes a new version and reports metadata, listing folders with a trailing slash', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const written = await vault.write('secret/data/aegis/prod/new', { data: { k: 'v' } });
    expect(written.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
    const meta = await vault.read('secret/metadata/aegis/prod/db');
    expect(meta.data.current_version).toBe(2);
    expect(Object.keys(meta.data.versions)).toEqual(['1', '2']);
    const listed = await vault.list('secret/metadata/aegis/prod');
    expect(listed.data.keys).toEqual(['api/', 'db', 'new', 'old']);
    const cas = await rejection(vault.write('secret/data/aegis/prod/new', { data: { k: 'w' }, options: { cas: 0 } }));
    expect(responseOf(cas).statusCode).toBe(400);
  });

  it('rejects a missing secret with "Status 404" and {"errors":[]}', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const err = await rejection(vault.read('secret/data/aegis/prod/missing'));
    expect(err.message).toBe('Status 404');
    expect(responseOf(err)).toEqual({ statusCode: 404, body: { errors: [] } });
    const emptyList = await rejection(vault.list('secret/metadata/nothing'));
    expect(responseOf(emptyList).body).toEqual({ errors: [] });
  });

  it('answers a soft-deleted version with a 404 that carries the envelope and no errors key', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const err = await rejection(vault.read('secret/data/aegis/prod/old'));
    expect(err.message).toBe('Status 404');
    const body = responseOf(err).body as Record<string, unknown>;
    expect(body).not.toHaveProperty('errors');
    expect(body.data).toMatchObject({ data: null, metadata: { version: 1, destroyed: false } });
    expect((body.data as { metadata: { deletion_time: string } }).metadata.deletion_time).not.toBe('');
  });

  it('answers a v1-style path on a v2 mount with a 404 and a warning', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const err = await rejection(vault.read('secret/aegis/prod/db'));
    expect(err.message).toBe('Status 404');
    const body = responseOf(err).body as Record<string, unknown>;
    expect(body.data).toBeNull();
    expect(body).not.toHaveProperty('errors');
    expect(String((body.warnings as string[])[0])).toContain('Invalid path for a versioned K/V secrets engine');
  });

  it('serves KV v1 mounts with data at the top level', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const res = await vault.read('kv1/legacy');
    expect(res.data).toEqual({ a: 'b' });
    expect(res.lease_duration).toBe(2764800);
  });

  it('cannot take the LIST method through Node\'s HTTP parser, hence noCustomHTTPVerbs', async () => {
    const NodeVault = (await import('node-vault')).default;
    const vault = NodeVault({ endpoint: running.url, token: emu.rootToken, requestOptions: { timeout: 10_000 } });
    const err = await rejection(vault.list('secret/metadata/aegis'));
    expect(responseOf(err).statusCode).toBe(400);
  });
});

describe('tokens and policies', () => {
  it('denies paths outside the token policies with the multierror text, and unknown tokens as invalid', async () => {
    const { id } = emu.createToken({ policies: ['audit'], ttl: 3600 });
    const vault = vaultClient(running.url, id);
    expect((await vault.read('secret/data/aegis/prod/db')).data.data.password).toBe('correct horse');
    expect((await vault.list('secret/metadata/aegis/prod')).data.keys).toContain('db');
    const denied = await rejection(vault.read('kv1/legacy'));
    expect(denied.message).toBe('1 error occurred:\n\t* permission denied\n\n');
    expect(responseOf(denied).statusCode).toBe(403);
    const write = await rejection(vault.write('secret/data/aegis/prod/db', { data: { x: 1 } }));
    expect(responseOf(write).statusCode).toBe(403);
    const bogus = await rejection(vaultClient(running.url, 'hvs.bogus').read('secret/data/aegis/prod/db'));
    expect(responseOf(bogus).statusCode).toBe(403);
    expect(bogus.message).toContain('permission denied');
    expect(bogus.message).toContain('invalid token');
  });

  it('accepts Authorization: Bearer as well as X-Vault-Token', async () => {
    const res = await fetch(`${running.url}/v1/secret/data/aegis/prod/api/token`, {
      headers: { authorization: `Bearer ${emu.rootToken}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { data: unknown } }).data.data).toEqual({ value: 't0' });
    const none = await fetch(`${running.url}/v1/secret/data/aegis/prod/api/token`);
    expect(none.status).toBe(403);
  });

  it('looks up a root token as Vault does: policies [root], auth/token/root, no expiry, no renewable key', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const self = await vault.tokenLookupSelf();
    expect(self.data).toMatchObject({
      id: emu.rootToken,
      policies: ['root'],
      path: 'auth/token/root',
      display_name: 'root',
      expire_time: null,
      ttl: 0,
      creation_ttl: 0,
      orphan: true,
    });
    expect(self.data).not.toHaveProperty('renewable');
  });

  it('reports the remaining ttl and expiry of a service token, and expires it', async () => {
    const { id, accessor } = emu.createToken({ policies: ['audit'], ttl: 3600, displayName: 'auditor' });
    clock += 600_000;
    const self = await vaultClient(running.url, id).tokenLookupSelf();
    expect(self.data).toMatchObject({
      ttl: 3000,
      creation_ttl: 3600,
      renewable: true,
      policies: ['default', 'audit'],
      display_name: 'token-auditor',
      expire_time: '2024-07-07T11:00:00.000Z',
    });
    const root = vaultClient(running.url, emu.rootToken);
    const other = await root.tokenLookup({ token: id });
    expect(other.data.accessor).toBe(accessor);
    const byAccessor = await root.write('auth/token/lookup-accessor', { accessor });
    expect(byAccessor.data.id).toBe('');
    expect(byAccessor.data.display_name).toBe('token-auditor');
    const bad = await rejection(root.tokenLookup({ token: 'hvs.nope' }));
    expect(responseOf(bad).statusCode).toBe(403);
    clock += 3_000_000;
    const expired = await rejection(vaultClient(running.url, id).tokenLookupSelf());
    expect(expired.message).toContain('invalid token');
  });
});

describe('sys/health and sealing', () => {
  it('resolves health with the body for every state, and the status codes follow Vault', async () => {
    const vault = vaultClient(running.url, undefined);
    const healthy = await vault.health();
    expect(healthy).toMatchObject({ initialized: true, sealed: false, standby: false, version: '1.15.2' });
    expect(typeof healthy.cluster_id).toBe('string');
    emu.seal();
    const sealed = await vault.health();
    expect(sealed).toMatchObject({ initialized: true, sealed: true });
    expect(sealed).not.toHaveProperty('cluster_id');
    expect((await fetch(`${running.url}/v1/sys/health`)).status).toBe(503);
    expect((await fetch(`${running.url}/v1/sys/health?sealedcode=200`)).status).toBe(200);
    emu.unseal();
    emu.setHealth({ standby: true });
    expect((await fetch(`${running.url}/v1/sys/health`)).status).toBe(429);
    expect((await fetch(`${running.url}/v1/sys/health?standbyok=true`)).status).toBe(200);
    emu.setHealth({ standby: false, initialized: false });
    expect((await fetch(`${running.url}/v1/sys/health`)).status).toBe(501);
  });

  it('rejects other calls with 503 "Vault is sealed" while sealed', async () => {
    emu.seal();
    const vault = vaultClient(running.url, emu.rootToken);
    const err = await rejection(vault.read('secret/data/aegis/prod/db'));
    expect(err.message).toBe('Vault is sealed');
    expect(responseOf(err).statusCode).toBe(503);
    expect((await vault.status()).sealed).toBe(true);
    emu.unseal();
    expect((await vault.read('secret/data/aegis/prod/db')).data.data.password).toBe('correct horse');
  });
});

describe('transit ed25519', () => {
  it('signs with a key whose raw public key verifies in node:crypto, and verifies signatures', async () => {
    emu.createTransitKey('aegis-signing');
    emu.rotateTransitKey('aegis-signing');
    const vault = vaultClient(running.url, emu.rootToken);
    const key = await vault.transitReadKey({ name: 'aegis-signing' });
    expect(key.data).toMatchObject({ type: 'ed25519', latest_version: 2, supports_signing: true });
    const input = Buffer.from('payload').toString('base64');
    const signed = await vault.write('transit/sign/aegis-signing', { input });
    expect(signed.data.signature).toMatch(/^vault:v2:[A-Za-z0-9+/]+=*$/);
    const raw = Buffer.from(String(key.data.keys['2'].public_key), 'base64');
    expect(raw).toHaveLength(32);
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]);
    const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const sig = Buffer.from(String(signed.data.signature).split(':')[2] ?? '', 'base64');
    expect(verify(null, Buffer.from('payload'), pub, sig)).toBe(true);
    const ok = await vault.write('transit/verify/aegis-signing', { input, signature: signed.data.signature });
    expect(ok.data.valid).toBe(true);
    const wrong = await vault.write('transit/verify/aegis-signing', {
      input: Buffer.from('other').toString('base64'),
      signature: signed.data.signature,
    });
    expect(wrong.data.valid).toBe(false);
    const tooNew = await rejection(vault.write('transit/verify/aegis-signing', { input, signature: 'vault:v3:AAAA' }));
    expect(tooNew.message).toBe('invalid signature: version is too new');
    const missing = await rejection(vault.transitReadKey({ name: 'nope' }));
    expect(missing.message).toBe('Status 404');
  });
});

describe('transit RSA, ECDSA and symmetric keys, as Aegis signs artifacts', () => {
  const file = Buffer.from('model weights');
  // Aegis sends base64(SHA-256(file)) and Vault hashes that input again before signing.
  const input = createHash('sha256').update(file).digest().toString('base64');
  const digestInput = createHash('sha256').update(file).digest();

  it('rsa-2048 signs with PSS over SHA-256 of the decoded input; the PEM public key verifies it in node:crypto', async () => {
    emu.createTransitKey('aegis-cosign', { type: 'rsa-2048' });
    const vault = vaultClient(running.url, emu.rootToken);
    const key = await vault.read('transit/keys/aegis-cosign');
    expect(key.data).toMatchObject({ type: 'rsa-2048', exportable: false, supports_signing: true, latest_version: 1 });
    expect(key.data.keys['1'].public_key).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const signed = await vault.write('transit/sign/aegis-cosign', { input, hash_algorithm: 'sha2-256' });
    expect(signed.data).toMatchObject({ key_version: 1, signature: expect.stringMatching(/^vault:v1:[A-Za-z0-9+/]+=*$/) });
    const sig = Buffer.from(String(signed.data.signature).split(':')[2], 'base64');
    const pub = createPublicKey(String(key.data.keys['1'].public_key));
    expect(verify('sha256', digestInput, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)).toBe(true);
    // Not a signature over the file itself: cosign/openssl over the artifact would not verify it.
    expect(verify('sha256', file, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)).toBe(false);
    expect((await vault.write('transit/verify/aegis-cosign', { input, signature: signed.data.signature, hash_algorithm: 'sha2-256' })).data.valid).toBe(true);
    expect((await vault.write('transit/verify/aegis-cosign/sha2-256', { input: Buffer.from('x').toString('base64'), signature: signed.data.signature })).data.valid).toBe(false);
    const pkcs = await vault.write('transit/sign/aegis-cosign', { input, signature_algorithm: 'pkcs1v15' });
    const pkcsSig = Buffer.from(String(pkcs.data.signature).split(':')[2], 'base64');
    expect(verify('sha256', digestInput, { key: pub, padding: constants.RSA_PKCS1_PADDING }, pkcsSig)).toBe(true);
  });

  it('ecdsa-p256 signs ASN.1 DER; a rotated key verifies old versions until min_decryption_version moves', async () => {
    emu.createTransitKey('aegis-model-sign', { type: 'ecdsa-p256', exportable: true });
    const vault = vaultClient(running.url, emu.rootToken);
    const v1 = await vault.write('transit/sign/aegis-model-sign', { input });
    emu.rotateTransitKey('aegis-model-sign');
    const key = await vault.read('transit/keys/aegis-model-sign');
    expect(key.data).toMatchObject({ type: 'ecdsa-p256', exportable: true, latest_version: 2 });
    expect(key.data.keys['1'].name).toBe('P-256');
    const pub = createPublicKey(String(key.data.keys['1'].public_key));
    expect(verify('sha256', digestInput, pub, Buffer.from(String(v1.data.signature).split(':')[2], 'base64'))).toBe(true);
    expect((await vault.write('transit/verify/aegis-model-sign', { input, signature: v1.data.signature })).data.valid).toBe(true);
    await vault.write('transit/keys/aegis-model-sign/config', { min_decryption_version: 2 }).catch(() => undefined);
    emu.setTransitMinDecryptionVersion('aegis-model-sign', 2);
    const old = await rejection(vault.write('transit/verify/aegis-model-sign', { input, signature: v1.data.signature }));
    expect(old.message).toBe('ciphertext or signature version is disallowed by policy (too old)');
  });

  it('a key created without a type is aes256-gcm96, which cannot sign (as the Aegis setup script leaves it)', async () => {
    emu.mountTransit();
    const vault = vaultClient(running.url, emu.rootToken);
    await vault.write('transit/keys/aegis-model-sign', {});
    const key = await vault.read('transit/keys/aegis-model-sign');
    expect(key.data).toMatchObject({ type: 'aes256-gcm96', supports_signing: false, supports_encryption: true, exportable: false });
    expect(typeof key.data.keys['1']).toBe('number');
    const refused = await rejection(vault.write('transit/sign/aegis-model-sign', { input }));
    expect(refused.message).toBe('key type aes256-gcm96 does not support signing');
    expect(responseOf(refused).statusCode).toBe(400);
    const noPrefix = await rejection(vault.write('transit/verify/aegis-model-sign', { input, signature: 'AAAA' }));
    expect(noPrefix.message).toBe('key type aes256-gcm96 does not support verification');
  });
});
