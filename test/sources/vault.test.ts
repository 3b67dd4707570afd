/**
 * The Vault source and the KV secret backend against the loopback Vault emulator, through
 * node-vault: KV v2 envelopes, `{"errors":[]}` 404 as absent, soft-deleted versions, 403
 * naming the path, sealed as down, token lookups, and the token read from a token file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { VaultEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { vaultSchema } from '../../src/config/schema';
import { NodeVaultSource, VaultClientHandle, VaultSecretBackend } from '../../src/sources/vault';
import { KnownSecrets } from '../../src/core/secret';
import { AuditError } from '../../src/core/errors';
import { publicKeyOfPrivatePem } from '../../src/sources/pem';

const emu = new VaultEmulator();
let running: RunningEmulator;
const handles: VaultClientHandle[] = [];
const dir = mkdtempSync(join(tmpdir(), 'vault-src-'));
let auditor: { id: string; accessor: string };
let gwToken: { id: string; accessor: string };
let rootish: { id: string; accessor: string };
const receipt = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function make(over: Record<string, unknown> = {}, known = new KnownSecrets()) {
  const file = join(dir, `token-${handles.length}`);
  // As Vault Agent writes it: the bare token and a newline.
  writeFileSync(file, `${auditor.id}\n`);
  const h = new VaultClientHandle(vaultSchema.parse({ address: running.url, token_file: file, timeout: 10_000, max_attempts: 1, ...over }), known);
  handles.push(h);
  return { handle: h, src: new NodeVaultSource(h), known };
}

async function failure(p: Promise<unknown>): Promise<AuditError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AuditError);
  return e as AuditError;
}

beforeAll(async () => {
  running = await emu.start();
  emu.putPolicy('aegis-audit', { 'secret/data/aegis/*': ['read'], 'auth/token/lookup-accessor': ['update'] });
  auditor = emu.createToken({ policies: ['aegis-audit'], ttl: 3600, renewable: true, displayName: 'aegis-audit' });
  gwToken = emu.createToken({ policies: ['gateway'], ttl: 600, renewable: true, displayName: 'gateway' });
  rootish = emu.createToken({ policies: [], root: true });
  emu.putKv('secret', 'aegis/runtime', { oidc_jwks_uri: 'https://idp.example/jwks', model_signing_pubkey: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n', 'clients/allowed': ['client-a', 'client-b'], empty: '' });
  emu.putKv('secret', 'aegis/gateway', { INTERNAL_SECRET: 'vault-internal-gw-0123456789' }, { createdTime: new Date('2026-11-01T00:00:00Z') });
  emu.putKv('secret', 'aegis/identity', { INTERNAL_SECRET: 'vault-internal-id-0123456789', JWT_SECRET_KEY: 'vault-jwt-secret-0123456789' });
  emu.putKv('secret', 'aegis/audit', { RECEIPT_SIGNING_PRIVATE_KEY: receipt });
  emu.putKv('secret', 'aegis/deleted', { x: 'gone-value-123456' }, { deleted: true });
  emu.putKv('secret', 'other/forbidden', { x: 'nope' });
});

afterAll(async () => {
  for (const h of handles) h.close();
  await emu.close();
});

beforeEach(async () => {
  emu.unseal();
  await emu.faults.clear();
  emu.faults.resetCounts();
});

describe('Vault source against the emulator', () => {
  test('KV v2 read unwraps data.data; lists and empty values are normalised; values are registered', async () => {
    const { src, known } = make();
    const kv = await src.readKv('aegis/runtime');
    expect(Object.keys(kv ?? {}).sort()).toEqual(['clients/allowed', 'empty', 'model_signing_pubkey', 'oidc_jwks_uri']);
    expect(kv?.oidc_jwks_uri.reveal()).toBe('https://idp.example/jwks');
    expect(kv?.['clients/allowed'].reveal()).toBe('["client-a","client-b"]');
    expect(kv?.empty.length).toBe(0);
    expect(known.scrub('see ["client-a","client-b"] now')).not.toContain('client-a');
    // The JWKS URI is what the IdP publishes: findings name key sets by it, so it is not scrubbed.
    expect(known.scrub('see https://idp.example/jwks now')).toBe('see https://idp.example/jwks now');
    // The public key is public: it is not registered, so reports may show it.
    expect(known.scrub('MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=')).toBe('MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=');
  });

  test('a missing secret (404 {"errors":[]}) and a soft-deleted version are absent, not errors', async () => {
    const { src } = make();
    expect(await src.readKv('aegis/nothing-here')).toBeUndefined();
    expect(await src.readKv('aegis/deleted')).toBeUndefined();
  });

  test('a 404 that names an error (no such mount) is a misconfiguration, not an absent secret', async () => {
    // A token allowed everywhere (root), so the wrong mount reaches routing instead of a 403.
    const file = join(dir, 'root-token');
    writeFileSync(file, `${rootish.id}\n`);
    const h = new VaultClientHandle(vaultSchema.parse({ address: running.url, token_file: file, timeout: 10_000, max_attempts: 1, kv_mount: 'kv' }), new KnownSecrets());
    handles.push(h);
    const src = new NodeVaultSource(h);
    const e = await failure(src.readKv('aegis/runtime'));
    expect(e.reason).toBe('not_found');
    expect(e.message).toMatch(/^vault: reading kv\/data\/aegis\/runtime: no handler for route .*kv_mount "kv"/);
    expect(e.message).not.toContain(rootish.id);
    // The secret backend does not read the misconfigured mount as "this service holds nothing".
    await expect(new VaultSecretBackend(src, h, 'audit').holders('INTERNAL_SECRET', ['gateway'])).rejects.toThrow(/no handler for route/);
  });

  test('with a ca_file, close() drops the TLS keep-alive sockets too', async () => {
    const key = join(dir, 'tls.key');
    const cert = join(dir, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ initialized: true, sealed: false, standby: false }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const open = () => new Promise<number>((r, j) => server.getConnections((err, n) => (err ? j(err) : r(n))));
    try {
      const file = join(dir, 'tls-token');
      writeFileSync(file, `${auditor.id}\n`);
      const h = new VaultClientHandle(
        vaultSchema.parse({ address: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, token_file: file, ca_file: cert, timeout: 10_000 }),
        new KnownSecrets(),
      );
      expect(await new NodeVaultSource(h).health()).toMatchObject({ sealed: false });
      expect(await open()).toBe(1);
      h.close();
      for (let i = 0; i < 50 && (await open()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await open()).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('403 names the path, never the token', async () => {
    const { src } = make();
    const e = await failure(src.readKv('other/forbidden'));
    expect(e.reason).toBe('forbidden');
    expect(e.message).toMatch(/^vault: reading secret\/data\/other\/forbidden: access denied: 1 error occurred: \* permission denied/);
    expect(e.message).not.toContain(auditor.id);
  });

  test('sealed: health says so from the 503 body; KV reads are down, not absent', async () => {
    emu.seal();
    const { src } = make();
    expect(await src.health()).toMatchObject({ initialized: true, sealed: true });
    const e = await failure(src.readKv('aegis/runtime'));
    expect(e.reason).toBe('sealed');
    expect(e.message).toBe('vault: reading secret/data/aegis/runtime: Vault is sealed');
  });

  test('health when unsealed', async () => {
    expect(await make().src.health()).toEqual({ initialized: true, sealed: false, standby: false, version: '1.15.2' });
  });

  test('lookup-self describes the auditor token without keeping it', async () => {
    const { src, known } = make();
    const t = await src.lookupSelf();
    expect(t).toMatchObject({ accessor: auditor.accessor, renewable: true, type: 'service' });
    expect([...t.policies].sort()).toEqual(['aegis-audit', 'default']);
    expect(t.ttl).toBeGreaterThan(3500);
    expect(t.expireTime).toBeInstanceOf(Date);
    expect(JSON.stringify(t)).not.toContain(auditor.id);
    expect(known.scrub(`token ${auditor.id}`)).toBe('token [redacted]');
  });

  test('lookup by accessor: a service token and a root token', async () => {
    const { src } = make();
    expect(await src.lookupAccessor(gwToken.accessor)).toMatchObject({ accessor: gwToken.accessor, renewable: true, policies: ['default', 'gateway'] });
    const root = await src.lookupAccessor(rootish.accessor);
    expect(root).toMatchObject({ policies: ['root'], path: 'auth/token/root', ttl: 0, expireTime: null, renewable: false });
    const e = await failure(src.lookupAccessor('no-such-accessor'));
    expect(e.message).toMatch(/^vault: looking up the token by accessor no-such-accessor: invalid accessor/);
  });

  test('secret backend: per-service fields with created_time, and the signing key', async () => {
    const { handle, src } = make();
    const b = new VaultSecretBackend(src, handle, 'audit');
    const holders = await b.holders('INTERNAL_SECRET', ['identity', 'gateway', 'api']);
    expect(holders.map((h) => [h.service, h.origin])).toEqual([
      ['identity', 'vault:secret/data/aegis/identity#INTERNAL_SECRET'],
      ['gateway', 'vault:secret/data/aegis/gateway#INTERNAL_SECRET'],
    ]);
    expect(holders[1].value.reveal()).toBe('vault-internal-gw-0123456789');
    expect(holders[1].lastModified?.toISOString()).toBe('2026-11-01T00:00:00.000Z');
    const [k] = await b.signingKeys('receipt');
    expect(k).toMatchObject({ provider: 'vault', origin: 'vault:secret/data/aegis/audit#RECEIPT_SIGNING_PRIVATE_KEY' });
    expect(k.fingerprint).toBe(publicKeyOfPrivatePem(receipt, 'x', 'y').fingerprint);
    // Each service's secret is read once per run.
    const reads = emu.faults.requestCount();
    await b.holders('JWT_SECRET_KEY', ['identity', 'gateway', 'api']);
    expect(emu.faults.requestCount()).toBe(reads);
  });

  test('the token from token_env; a missing token is a clear error', async () => {
    process.env.AEGIS_TEST_VAULT_TOKEN = `  ${auditor.id}\n`;
    const h = new VaultClientHandle(vaultSchema.parse({ address: running.url, token_env: 'AEGIS_TEST_VAULT_TOKEN', timeout: 10_000 }), new KnownSecrets());
    handles.push(h);
    expect((await new NodeVaultSource(h).lookupSelf()).accessor).toBe(auditor.accessor);
    const h2 = new VaultClientHandle(vaultSchema.parse({ address: running.url, token_env: 'AEGIS_TEST_VAULT_TOKEN_UNSET', timeout: 10_000 }), new KnownSecrets());
    handles.push(h2);
    await expect(new NodeVaultSource(h2).lookupSelf()).rejects.toThrow('vault: environment variable AEGIS_TEST_VAULT_TOKEN_UNSET (token_env) is not set');
    const h3 = new VaultClientHandle(vaultSchema.parse({ address: running.url, token_file: join(dir, 'absent'), timeout: 10_000 }), new KnownSecrets());
    handles.push(h3);
    await expect(new NodeVaultSource(h3).lookupSelf()).rejects.toThrow(/^vault: reading token file .*absent: not found/);
  });

  test('throttling (429) is retried up to max_attempts, then reported with the count', async () => {
    await emu.faults.inject('throttle');
    const { src } = make({ max_attempts: 3 });
    const e = await failure(src.readKv('aegis/runtime'));
    expect(e.reason).toBe('throttled');
    expect(e.message).toBe('vault: reading secret/data/aegis/runtime: throttled (gave up after 3 attempts)');
    expect(emu.faults.requestCount()).toBe(3);
  });

  test('a hung Vault times out at requestOptions.timeout', async () => {
    await emu.faults.inject('hang');
    const { src } = make({ timeout: 300 });
    const t0 = Date.now();
    const e = await failure(src.lookupSelf());
    // Below the 5 s default: the configured timeout fired (a bound for a loaded machine, not a figure).
    expect(Date.now() - t0).toBeLessThan(4_500);
    expect(e.reason).toBe('timeout');
    expect(e.message).toMatch(/^vault: looking up the auditor token \(auth\/token\/lookup-self\): timed out/);
  });

  test('a malformed body is named as such', async () => {
    await emu.faults.inject('malformed');
    const e = await failure(make().src.readKv('aegis/runtime'));
    expect(e.reason).toBe('malformed_response');
    expect(e.message).toMatch(/^vault: reading secret\/data\/aegis\/runtime: malformed response/);
  });
});
