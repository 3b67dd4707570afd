/**
 * The cloud sandbox end to end: every cloud violation seeded into the emulators, the real
 * pipeline run against them, and the findings of the cloud checks equal to the manifest.
 * Also shows that the existing checks read the cloud sources with no change of their own:
 * internal-secret-drift sees SSM and Vault values through the secret backends, and
 * signing-key-source reads CloudWatch through the LogSource. A no-scrub canary proves no
 * seeded value reaches the report.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { createSources } from '../../src/sources';
import { KnownSecrets } from '../../src/core/secret';
import { silentLogger } from '../../src/core/logger';
import { startCloudSandbox, CLOUD_VIOLATION_IDS, SANDBOX_AWS_ENV, type CloudSandbox } from '../../src/sandbox/cloud';

const SERVICES = ['identity', 'gateway', 'api', 'audit', 'insight'];
const CLOUD_CHECKS = ['auth-failure-spike', 'model-artifact-signature', 'runtime-secrets-present', 'ssm-persisted-secrets', 'vault-token-hygiene'];
const dir = mkdtempSync(join(tmpdir(), 'cloud-sandbox-'));
let cloud: CloudSandbox;
let configFile = '';

class RecordingSecrets extends KnownSecrets {
  override scrub(text: string): string {
    return text;
  }
}

beforeAll(async () => {
  const now = Date.now();
  const common = randomBytes(24).toString('base64url');
  const secrets: Record<string, Record<string, string>> = {};
  for (const s of SERVICES) secrets[s] = { INTERNAL_SECRET: s === 'api' ? randomBytes(24).toString('base64url') : common };
  const ts = new Date(now - 3_600_000).toISOString();
  const logs = {
    audit: [
      JSON.stringify({ ts, service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' }),
      JSON.stringify({ ts, service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key: 'root', source: 'file' }),
    ],
  };
  cloud = await startCloudSandbox({ seed: 'e2e', deployment: 'sbx', services: SERVICES, secrets, logs, violations: ['all'], dir, now: new Date(now) });
  const f = cloud.configFragment;
  configFile = join(dir, 'audit.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({ deployment: 'sbx', services: SERVICES, sources: { logs: { cloudwatch: f.logs.cloudwatch }, secrets: f.secrets, artifacts: f.artifacts }, state: { dir: join(dir, 'state') } }),
  );
});

afterAll(async () => {
  await cloud?.stop();
});

test('every cloud violation is in the manifest once', () => {
  expect(cloud.manifestEntries).toHaveLength(CLOUD_VIOLATION_IDS.length);
  expect(new Set(cloud.manifestEntries.map((e) => e.check))).toEqual(new Set(CLOUD_CHECKS));
});

test('the cloud checks fail exactly as the manifest says; existing checks read the cloud sources', async () => {
  const known = new RecordingSecrets();
  const loaded = loadConfig(configFile, { registry });
  const report = await runAudit(loaded, registry, { only: [...CLOUD_CHECKS, 'internal-secret-drift', 'signing-key-source'], knownSecrets: known, logger: silentLogger() });
  const status = Object.fromEntries(report.results.map((r) => [r.check, [r.status, r.error]]));
  expect(status).toEqual({
    'auth-failure-spike': ['fail', null],
    'internal-secret-drift': ['fail', null],
    'model-artifact-signature': ['fail', null],
    'runtime-secrets-present': ['fail', null],
    'signing-key-source': ['fail', null],
    'ssm-persisted-secrets': ['fail', null],
    'vault-token-hygiene': ['fail', null],
  });
  const found = report.results
    .filter((r) => CLOUD_CHECKS.includes(r.check))
    .flatMap((r) => r.findings.filter((f) => f.severity !== 'info').map((f) => `${f.check} ${f.resource}`))
    .sort();
  expect(found).toEqual(cloud.manifestEntries.map((e) => `${e.check} ${e.resource}`).sort());
  // internal-secret-drift: the api's differing value came from SSM and Vault only.
  const drift = report.results.find((r) => r.check === 'internal-secret-drift');
  expect(drift?.findings.map((f) => f.resource)).toContain('secret=INTERNAL_SECRET');
  // signing-key-source: the PEM fallback was logged to CloudWatch only.
  const sks = report.results.find((r) => r.check === 'signing-key-source');
  expect(sks?.findings.map((f) => `${f.messageId} ${f.resource}`)).toEqual(['fileFallback instance=audit-1,key=root']);
  const spike = report.results.find((r) => r.check === 'auth-failure-spike');
  expect(spike?.findings[0].message).toMatch(/top sources: 198\.51\.100\.77 \(40\)/);
  expect(spike?.measurements?.find((m) => m.name === 'auth_failures')?.value).toBeGreaterThan(120);
  // Canary: nothing seeded reaches the report, even with the scrubber switched off.
  const canary = new KnownSecrets();
  for (const v of cloud.secretValues) canary.add(v);
  const text = JSON.stringify(report);
  expect(canary.scrub(text)).toBe(text);
});

test('the secret store offers SSM and Vault copies of the signing key to signing-key-fingerprint', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  cloud.emulators.ssm.putParameter({ name: '/aegis/sbx/audit/RECEIPT_SIGNING_PRIVATE_KEY', type: 'SecureString', value: pem });
  cloud.emulators.vault.putKv('secret', 'aegis/audit', { INTERNAL_SECRET: 'x-unused-value-123', RECEIPT_SIGNING_PRIVATE_KEY: pem });
  const loaded = loadConfig(configFile, { registry });
  const known = new KnownSecrets();
  const open = createSources(loaded.config, { knownSecrets: known, logger: silentLogger() });
  try {
    const keys = await open.sources.secrets!.signingKeys('receipt');
    expect(keys.map((k) => k.provider).sort()).toEqual(['ssm', 'vault']);
    expect(new Set(keys.map((k) => k.fingerprint)).size).toBe(1);
    // The private key read from SSM/Vault was registered: its key material is scrubbed.
    const body = pem.split('\n')[1];
    expect(known.scrub(`leak ${body}`)).not.toContain(body.slice(-16));
  } finally {
    await open.close();
  }
});

test('the AWS credential variables stay set while any cloud sandbox runs, and the last stop takes them back', async () => {
  const before = process.env[SANDBOX_AWS_ENV.access_key_id];
  expect(before).toBeTruthy(); // the suite's sandbox is up
  const other = await startCloudSandbox({ deployment: 'second', services: SERVICES, dir: mkdtempSync(join(tmpdir(), 'cloud-sandbox-2-')) });
  await other.stop();
  await other.stop(); // idempotent: does not release twice
  expect(process.env[SANDBOX_AWS_ENV.access_key_id]).toBe(before);
  await cloud.stop();
  expect(process.env[SANDBOX_AWS_ENV.access_key_id]).toBeUndefined();
  expect(process.env[SANDBOX_AWS_ENV.secret_access_key]).toBeUndefined();
  await expect(fetch(`${cloud.vaultUrl}/v1/sys/health`)).rejects.toThrow();
});
