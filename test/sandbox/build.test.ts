/**
 * The sandbox on the run's real Postgres: what it writes verifies independently (node:crypto
 * here, not the sandbox's code), is deterministic per seed, is clean with no violation, and
 * each violation changes exactly what it declares.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { adminUrl } from '../helpers/pg';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import { listViolations, type ViolationId } from '../../src/sandbox/violations';
import { paginateFilterLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import { paginateDescribeParameters, paginateListCommands } from '@aws-sdk/client-ssm';
import { parseDotenv } from '../../src/sources/dotenv';
import { parseConfig } from '../../src/config/load';
import { HOSTILE } from '../../src/sandbox/plan';
import { logsClient, ssmClient, vaultClient } from '../emulators/clients';
import { PRIVATE_LABEL } from '../helpers/pem';
import { KnownSecrets } from '../../src/core/secret';
import { TlsEndpointSource } from '../../src/sources/endpoints';
import type { AuditConfig } from '../../src/config/schema';

// Builds (a Postgres database, cloud emulators, identity side) run in hooks and tests alike:
// seconds on a quiet machine, far more with two suites on two busy cores.
jest.setTimeout(180_000);

const NOW = new Date('2026-11-22T10:00:00.000Z');
const ROWS = 300;
const DAY = 86_400_000;
const dirs: string[] = [];
const sandboxes: Sandbox[] = [];

async function build(violations: 'all' | 'none' | ViolationId[], seed = 11, extra: { rows?: number; now?: Date; hostile?: boolean } = {}): Promise<Sandbox> {
  const dir = mkdtempSync(join(tmpdir(), 'aegis-sbx-'));
  dirs.push(dir);
  const sb = await buildSandbox({ dir, seed, rows: extra.rows ?? ROWS, violations, adminUrl: adminUrl(), now: extra.now ?? NOW, hostile: extra.hostile });
  sandboxes.push(sb);
  return sb;
}

// One sandbox per violation (and per combination): stopping them all takes a while on a loaded machine.
afterAll(async () => {
  for (const sb of sandboxes) await sb.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 300_000);

// ---------------------------------------------------------------- an independent reader

interface Row {
  id: number;
  created_at: Date;
  action: string;
  payload: unknown;
  prev_hash: string;
  row_hash: string;
  signature: string;
  key_fingerprint: string;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const fingerprint = (k: KeyObject) => 'sha256:' + createHash('sha256').update(k.export({ type: 'spki', format: 'der' })).digest('hex');

interface Snapshot {
  rows: Row[];
  roots: { id: number; up_to_id: number; root_hash: string; signature: string; key_fingerprint: string }[];
  historical: { fingerprint: string; public_key: string }[];
  apiKeys: { id: string; created_at: Date; revoked_at: Date | null }[];
  env: Record<string, Map<string, string>>;
  envMtime: Record<string, number>;
  pem: Record<string, string>;
  /** instance/key → source of the latest signing_key_loaded event */
  keyLoads: Record<string, string>;
  authFailures: number;
  logLines: number;
  nonJsonLines: number;
  cloud: CloudSnapshot;
  /** Deploy tree: path → content. */
  deploy: Record<string, string>;
  /** Model artifact key → `unsigned`, `error-body`, or whether its signature verifies under aegis-model-sign. */
  artifacts: Record<string, string>;
  /** Repository checkout: path → content (latin1, so binary files compare byte for byte). */
  repo: Record<string, string>;
}

function filesUnder(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((d) => {
    const r = rel ? `${rel}/${d.name}` : d.name;
    return d.isDirectory() ? filesUnder(dir, r) : [r];
  });
}

/** Each artifact's signature as a verifier sees it: asked of the emulator's Transit over HTTP. */
async function artifactStates(sb: Sandbox): Promise<Record<string, string>> {
  const dir = join(sb.dir, 'models');
  const out: Record<string, string> = {};
  const files = filesUnder(dir);
  for (const key of files.filter((f) => !/\.(sig\.json|sig|sha256)$/.test(f))) {
    const sigFile = files.find((f) => f === `${key}.sig.json` || f === `${key}.sig`);
    if (!sigFile) {
      out[key] = 'unsigned';
      continue;
    }
    const sig = JSON.parse(readFileSync(join(dir, sigFile), 'utf8')) as { errors?: unknown; data?: { signature?: string } };
    if (sig.errors) {
      out[key] = 'error-body';
      continue;
    }
    const input = createHash('sha256').update(readFileSync(join(dir, key))).digest('base64');
    const vault = sb.cloud?.emulators.vault;
    const res = await fetch(`${sb.cloud?.vaultUrl}/v1/transit/verify/aegis-model-sign`, { method: 'POST', headers: { 'X-Vault-Token': vault?.rootToken ?? '' }, body: JSON.stringify({ input, signature: sig.data?.signature }) });
    out[key] = ((await res.json()) as { data: { valid: boolean } }).data.valid ? 'valid' : 'invalid';
  }
  return out;
}

/** The cloud side as the real clients see it. */
interface CloudSnapshot {
  /** CloudWatch group → messages in time order. */
  lines: Record<string, string[]>;
  /** `name:type` of every parameter under the deployment's path. */
  parameters: string[];
  commands: string[];
  runtimeFields: string[];
  /** service → `root`, or `ttl=<expires>,renewable=<bool>` */
  tokens: Record<string, string>;
  /** The identity side seen from outside (identitySnapshot). */
  identity: Record<string, string>;
}

async function cloudSnapshot(sb: Sandbox): Promise<CloudSnapshot> {
  const { config } = parseConfig(readFileSync(sb.configPath, 'utf8'), sb.configPath);
  const cw = config.sources.logs?.cloudwatch;
  const ssmCfg = config.sources.secrets?.ssm;
  const vaultCfg = config.sources.secrets?.vault;
  if (!cw || !ssmCfg || !vaultCfg) throw new Error('the sandbox has no cloud side');
  const logs = logsClient(cw.endpoint as string);
  const ssm = ssmClient(ssmCfg.endpoint as string);
  try {
    const lines: Record<string, string[]> = {};
    for (const group of Object.values(cw.groups)) {
      lines[group] = [];
      for await (const page of paginateFilterLogEvents({ client: logs }, { logGroupName: group })) {
        for (const e of page.events ?? []) lines[group].push(e.message ?? '');
      }
    }
    const parameters: string[] = [];
    for await (const page of paginateDescribeParameters({ client: ssm }, { ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: [ssmCfg.path] }] })) {
      for (const p of page.Parameters ?? []) parameters.push(`${p.Name}:${p.Type}`);
    }
    const commands: string[] = [];
    for await (const page of paginateListCommands({ client: ssm }, {})) for (const c of page.Commands ?? []) commands.push(c.CommandId ?? '');
    const vault = vaultClient(vaultCfg.address, readFileSync(vaultCfg.token_file as string, 'utf8').trim());
    const runtime = (await vault.read('secret/data/aegis/runtime')) as { data: { data: Record<string, unknown> } };
    const tokens: Record<string, string> = {};
    for (const [svc, accessor] of Object.entries(vaultCfg.token_accessors)) {
      const t = ((await vault.tokenLookupAccessor({ accessor })) as { data: { policies: string[]; ttl: number; renewable: boolean } }).data;
      tokens[svc] = t.policies.includes('root') ? 'root' : `ttl=${t.ttl > 0},renewable=${t.renewable === true}`;
    }
    const identity = await identitySnapshot(config);
    return { lines, parameters: parameters.sort(), commands: commands.sort(), runtimeFields: Object.keys(runtime.data.data).sort(), tokens, identity };
  } finally {
    logs.destroy();
    ssm.destroy();
  }
}

/**
 * What the identity side does, observed from outside over its real TLS endpoints: the keys its
 * JWKS serves, how the mTLS endpoint answers a client without a certificate, one with a forged
 * header and an unenrolled one, how the OIDC endpoint answers an unsigned, an expired and a
 * wrong-audience token, and whether a certificate is close to expiry or long-lived.
 */
async function identitySnapshot(config: AuditConfig): Promise<Record<string, string>> {
  const ep = config.sources.endpoints;
  if (!ep) throw new Error('the sandbox has no identity side');
  const src = new TlsEndpointSource(ep, new KnownSecrets());
  const [mtls, oidc] = Object.entries(ep.targets).sort(([, a]) => (a.probes.includes('mtls') ? -1 : 1)).map(([n]) => n);
  const out: Record<string, string> = {};
  const status = (o: { kind: string; status?: number }) => (o.kind === 'response' ? String(o.status) : 'tls');
  const clientCn = (await src.clientCertificates()).find((c) => c.role === 'enrolled');
  out['mtls.no-cert'] = status(await src.probe(mtls, { client: 'none' }));
  out['mtls.forged-header'] = status(await src.probe(mtls, { client: 'none', headers: { 'x-ssl-client-cn': /CN=([^,\n]+)/.exec(new (await import('node:crypto')).X509Certificate(clientCn?.pem ?? '').subject)?.[1] ?? '' } }));
  out['mtls.unenrolled'] = status(await src.probe(mtls, { client: 'unenrolled' }));
  const signer = await src.tokenSigner();
  if (!signer) throw new Error('no probe signing key');
  const t = ep.targets[oidc].oidc;
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'snapshot', aud: t.audience, iss: t.issuer, iat: now, exp: now + 300 };
  const kid = { kid: 'aegis-audit-probe' };
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  out['oidc.alg-none'] = status(await src.probe(oidc, { client: 'none', bearer: `${b64({ alg: 'none', ...kid })}.${b64(claims)}.` }));
  out['oidc.expired'] = status(await src.probe(oidc, { client: 'none', bearer: await signer.sign({ ...claims, iat: now - 7200, exp: now - 3600 }, kid) }));
  out['oidc.other-audience'] = status(await src.probe(oidc, { client: 'none', bearer: await signer.sign({ ...claims, aud: 'someone-else' }, kid) }));
  const jwksUri = (await vaultRuntimeJwks(config)) ?? '';
  for (const k of ((await src.fetchJson(jwksUri)).body as { keys: Record<string, unknown>[] }).keys) out[`jwks.${String(k.kid)}`] = `${String(k.kty)}${k.d ? '+private' : ''}`;
  const { X509Certificate } = await import('node:crypto');
  const server = new X509Certificate((await src.serverCertificates(mtls)).chain[0]);
  out['cert.server'] = new Date(server.validTo).getTime() - Date.now() < 14 * DAY ? 'expiring' : 'ok';
  const client = new X509Certificate(clientCn?.pem ?? '');
  out['cert.client'] = new Date(client.validTo).getTime() - new Date(client.validFrom).getTime() > 90 * DAY ? 'long-lived' : 'ok';
  return out;
}

async function vaultRuntimeJwks(config: AuditConfig): Promise<string | undefined> {
  const v = config.sources.secrets?.vault;
  if (!v) return undefined;
  const vault = vaultClient(v.address, readFileSync(v.token_file as string, 'utf8').trim());
  const runtime = (await vault.read('secret/data/aegis/runtime')) as { data: { data: Record<string, unknown> } };
  return String(runtime.data.data.oidc_jwks_uri);
}

async function snapshot(sb: Sandbox): Promise<Snapshot> {
  const c = new Client({ connectionString: sb.postgresUrl });
  await c.connect();
  try {
    const rows = (await c.query<Row>('SELECT * FROM audit_log ORDER BY id')).rows.map((r) => ({ ...r, id: Number(r.id) }));
    const roots = (await c.query('SELECT * FROM transparency_roots ORDER BY id')).rows.map((r) => ({ ...r, id: Number(r.id), up_to_id: Number(r.up_to_id) }));
    const historical = (await c.query('SELECT fingerprint, public_key FROM transparency_historical_keys ORDER BY fingerprint')).rows;
    const apiKeys = (await c.query('SELECT id, created_at, revoked_at FROM api_keys ORDER BY id')).rows;
    const env: Snapshot['env'] = {};
    const envMtime: Snapshot['envMtime'] = {};
    for (const f of readdirSync(join(sb.dir, 'env'))) {
      const p = join(sb.dir, 'env', f);
      env[f.replace(/\.env$/, '')] = parseDotenv(readFileSync(p, 'utf8'), p);
      envMtime[f.replace(/\.env$/, '')] = statSync(p).mtimeMs;
    }
    const pem = Object.fromEntries(readdirSync(join(sb.dir, 'keys')).map((f) => [f, readFileSync(join(sb.dir, 'keys', f), 'utf8')]));
    const loads: { ts: number; k: string; source: string }[] = [];
    let authFailures = 0;
    let logLines = 0;
    let nonJsonLines = 0;
    for (const service of readdirSync(join(sb.dir, 'logs'))) {
      for (const f of readdirSync(join(sb.dir, 'logs', service))) {
        for (const line of readFileSync(join(sb.dir, 'logs', service, f), 'utf8').split('\n')) {
          if (line === '') continue;
          logLines++;
          let o: Record<string, unknown>;
          try {
            o = JSON.parse(line) as Record<string, unknown>;
          } catch {
            nonJsonLines++;
            continue;
          }
          if (o.event === 'auth_failure') authFailures++;
          if (o.event === 'signing_key_loaded') loads.push({ ts: Date.parse(String(o.ts)), k: `${String(o.instance)}/${String(o.key)}`, source: String(o.source) });
        }
      }
    }
    const cloud = await cloudSnapshot(sb);
    for (const line of Object.values(cloud.lines).flat()) {
      logLines++;
      try {
        if ((JSON.parse(line) as Record<string, unknown>).event === 'auth_failure') authFailures++;
      } catch {
        nonJsonLines++;
      }
    }
    loads.sort((a, b) => a.ts - b.ts);
    const keyLoads: Record<string, string> = {};
    for (const l of loads) keyLoads[l.k] = l.source;
    const deploy = Object.fromEntries(filesUnder(join(sb.dir, 'deploy')).map((f) => [f, readFileSync(join(sb.dir, 'deploy', f), 'utf8')]));
    const repo = Object.fromEntries(filesUnder(join(sb.dir, 'repo')).map((f) => [f, readFileSync(join(sb.dir, 'repo', f), 'latin1')]));
    return { rows, roots, historical, apiKeys, env, envMtime, pem, keyLoads, authFailures, logLines, nonJsonLines, cloud, deploy, artifacts: await artifactStates(sb), repo };
  } finally {
    await c.end();
  }
}

/** Verifies the chain as the design defines it; returns the broken rows and roots by kind. */
function verifyChain(s: Snapshot, keys: Map<string, KeyObject>, rootKeys: Map<string, KeyObject>) {
  const out = { chainBreak: [] as number[], hashMismatch: [] as number[], badSignature: [] as number[], unknownKey: new Set<string>(), rootMismatch: [] as number[] };
  let prev = '0'.repeat(64);
  const hashes = new Map<number, string>();
  for (const r of s.rows) {
    if (r.prev_hash !== prev) out.chainBreak.push(r.id);
    const canon = canonical({ action: r.action, created_at: r.created_at.toISOString(), id: r.id, payload: r.payload });
    if (createHash('sha256').update(r.prev_hash + canon, 'utf8').digest('hex') !== r.row_hash) out.hashMismatch.push(r.id);
    const k = keys.get(r.key_fingerprint);
    if (!k) out.unknownKey.add(r.key_fingerprint);
    else if (!verify(null, Buffer.from(r.row_hash, 'hex'), k, Buffer.from(r.signature, 'base64'))) out.badSignature.push(r.id);
    prev = r.row_hash;
    hashes.set(r.id, r.row_hash);
  }
  for (const root of s.roots) {
    const k = rootKeys.get(root.key_fingerprint);
    const ok = hashes.get(root.up_to_id) === root.root_hash && !!k && verify(null, Buffer.from(root.root_hash, 'hex'), k, Buffer.from(root.signature, 'base64'));
    if (!ok) out.rootMismatch.push(root.id);
  }
  return out;
}

/** The keys the auditor can know: the configured ones (env file, PEM files) and the historical table. */
function knownKeys(s: Snapshot, signing = 'audit') {
  const rowKeys = new Map<string, KeyObject>();
  const rootKeys = new Map<string, KeyObject>();
  const add = (m: Map<string, KeyObject>, pem: string) => {
    const k = createPublicKey(pem);
    m.set(fingerprint(k), k);
  };
  add(rowKeys, s.env[signing].get('RECEIPT_SIGNING_PRIVATE_KEY') as string);
  if (s.pem['receipt-signing.pem']) add(rowKeys, s.pem['receipt-signing.pem']);
  add(rootKeys, s.env[signing].get('ROOT_SIGNING_PRIVATE_KEY') as string);
  for (const h of s.historical) add(rowKeys, h.public_key);
  return { rowKeys, rootKeys };
}

// ---------------------------------------------------------------- tests

describe('a clean sandbox (violations: none)', () => {
  let sb: Sandbox;
  let s: Snapshot;
  beforeAll(async () => {
    sb = await build('none');
    s = await snapshot(sb);
  });

  test('declares no violation', () => {
    expect(sb.manifest.violations).toEqual([]);
    expect(JSON.parse(readFileSync(join(sb.dir, 'manifest.json'), 'utf8'))).toMatchObject({ seeded: [], violations: [] });
  });

  test('its chain and roots verify under the configured and historical keys, rotation rows included', () => {
    const { rowKeys, rootKeys } = knownKeys(s);
    const v = verifyChain(s, rowKeys, rootKeys);
    expect(v).toEqual({ chainBreak: [], hashMismatch: [], badSignature: [], unknownKey: new Set(), rootMismatch: [] });
    expect(s.rows).toHaveLength(ROWS);
    expect(s.roots.length).toBeGreaterThanOrEqual(10);
    const rotations = s.rows.filter((r) => r.action === 'key_rotated');
    expect(rotations).toHaveLength(2);
    for (const r of rotations) expect(r.payload).toEqual({ key: 'receipt', old_fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), new_fingerprint: r.key_fingerprint });
  });

  test('the configured receipt key signs the newest rows and every older key is in the historical table', () => {
    const newest = s.rows[s.rows.length - 1].key_fingerprint;
    expect(fingerprint(createPublicKey(s.env.audit.get('RECEIPT_SIGNING_PRIVATE_KEY') as string))).toBe(newest);
    const old = [...new Set(s.rows.map((r) => r.key_fingerprint))].filter((f) => f !== newest).sort();
    expect(old).toHaveLength(2);
    expect(s.historical.map((h) => h.fingerprint)).toEqual(old);
    for (const h of s.historical) expect(fingerprint(createPublicKey(h.public_key))).toBe(h.fingerprint);
  });

  test('every audit instance’s latest start loaded both keys from env, though earlier starts did not', () => {
    expect(Object.keys(s.keyLoads).sort()).toEqual(['audit-1/receipt', 'audit-1/root', 'audit-2/receipt', 'audit-2/root', 'audit-3/receipt', 'audit-3/root']);
    expect(new Set(Object.values(s.keyLoads))).toEqual(new Set(['env']));
    const all = readdirSync(join(sb.dir, 'logs', 'audit')).map((f) => readFileSync(join(sb.dir, 'logs', 'audit', f), 'utf8')).join('\n');
    expect(all).toMatch(/"event":"signing_key_loaded","key":"receipt","source":"file"/);
  });

  test('INTERNAL_SECRET is the same in every env file, with no overlap open', () => {
    const values = Object.values(s.env).map((m) => m.get('INTERNAL_SECRET'));
    expect(values).toHaveLength(5);
    expect(new Set(values).size).toBe(1);
    expect(values[0]).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(Object.values(s.env).some((m) => m.has('INTERNAL_SECRET_PREVIOUS'))).toBe(false);
    expect([...Object.keys(s.env)].filter((k) => s.env[k].has('JWT_SECRET_KEY')).sort()).toEqual(['gateway', 'identity']);
  });

  test('rotations and API keys are within policy', () => {
    const last = (secret: string) => Math.max(...s.rows.filter((r) => r.action === 'secret_rotated' && (r.payload as { secret: string }).secret === secret).map((r) => r.created_at.getTime()));
    expect(NOW.getTime() - last('JWT_SECRET_KEY')).toBeLessThan(90 * DAY);
    expect(NOW.getTime() - last('INTERNAL_SECRET')).toBeLessThan(90 * DAY);
    expect(NOW.getTime() - s.rows[0].created_at.getTime()).toBeLessThan(365 * DAY);
    const live = s.apiKeys.filter((k) => k.revoked_at === null);
    expect(live.length).toBeGreaterThan(5);
    for (const k of live) expect(NOW.getTime() - k.created_at.getTime()).toBeLessThan(90 * DAY);
    expect(s.apiKeys.some((k) => k.revoked_at !== null && NOW.getTime() - k.created_at.getTime() > 90 * DAY)).toBe(true);
  });

  test('env files parse as dotenv, the PEM keys survive the \\n escapes, and no PEM file is left on the volume', () => {
    const raw = readFileSync(join(sb.dir, 'env', 'audit.env'), 'utf8');
    expect(raw).toMatch(new RegExp(`^RECEIPT_SIGNING_PRIVATE_KEY="-----BEGIN ${PRIVATE_LABEL}-----\\\\n[^\\n]+\\\\n-----END ${PRIVATE_LABEL}-----\\\\n"$`, 'm'));
    expect(createPublicKey(s.env.audit.get('RECEIPT_SIGNING_PRIVATE_KEY') as string).asymmetricKeyType).toBe('ed25519');
    expect(createPublicKey(s.env.audit.get('ROOT_SIGNING_PRIVATE_KEY') as string).asymmetricKeyType).toBe('ed25519');
    // The keys load from env; the PEM fallback location exists and is empty.
    expect(s.pem).toEqual({});
  });

  test('logs carry realistic noise: non-JSON lines and a line over 1 MiB', () => {
    expect(s.nonJsonLines).toBeGreaterThan(10);
    expect(s.authFailures).toBeGreaterThan(5);
    const longest = Math.max(...readFileSync(join(sb.dir, 'logs', 'audit', 'audit-2.jsonl'), 'utf8').split('\n').map((l) => l.length));
    expect(longest).toBeGreaterThan(1024 * 1024);
  });

  test('audit.yaml validates and names files that exist, relative to itself', () => {
    const text = readFileSync(sb.configPath, 'utf8');
    expect(text).not.toMatch(/\/tmp\//); // portable: no absolute file paths
    const { config } = parseConfig(text, sb.configPath);
    expect(config.services).toEqual(['identity', 'gateway', 'api', 'audit', 'insight']);
    expect(config.sources.postgres?.url).toBe(sb.postgresUrl);
    for (const f of Object.values(config.sources.secrets?.env_files ?? {})) expect(statSync(f).isFile()).toBe(true);
    // The PEM fallback paths name where a key would be; with the keys in env, none is there.
    for (const f of Object.values(config.sources.secrets?.pem_files ?? {})) expect(statSync(dirname(f as string)).isDirectory()).toBe(true);
    // Each service's logs live in one place: auth failures are counted once.
    expect(Object.keys(config.sources.logs?.files ?? {}).sort()).toEqual(['api', 'audit', 'insight']);
    expect(config.sources.logs?.cloudwatch?.groups).toEqual({ identity: '/aegis/sandbox/identity', gateway: '/aegis/sandbox/gateway' });
    expect(config.sources.logs?.cloudwatch?.credentials_env).toEqual({ access_key_id: 'AEGIS_SANDBOX_AWS_ACCESS_KEY_ID', secret_access_key: 'AEGIS_SANDBOX_AWS_SECRET_ACCESS_KEY' });
    expect(config.sources.secrets?.ssm?.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    expect(statSync(config.sources.secrets?.vault?.token_file as string).isFile()).toBe(true);
    expect(text).toMatch(/token_file: vault-token$/m);
  });

  test('the cloud side holds the services’ secrets as their env files do, quiet logs, clean deploys and hygienic tokens', () => {
    const ssmSecrets = s.cloud.parameters.filter((p) => /INTERNAL_SECRET|JWT_SECRET_KEY/.test(p));
    expect(ssmSecrets).toEqual(
      ['api', 'audit', 'gateway', 'identity', 'insight'].map((svc) => `/aegis/sandbox/${svc}/INTERNAL_SECRET:SecureString`)
        .concat(['/aegis/sandbox/gateway/JWT_SECRET_KEY:SecureString', '/aegis/sandbox/identity/JWT_SECRET_KEY:SecureString'])
        .sort(),
    );
    expect(s.cloud.runtimeFields).toEqual(['clients/allowed', 'model_signing_pubkey', 'oidc_jwks_uri']);
    expect(new Set(Object.values(s.cloud.tokens))).toEqual(new Set(['ttl=true,renewable=true']));
    expect(s.cloud.commands.length).toBeGreaterThanOrEqual(6);
    expect(s.cloud.lines['/aegis/sandbox/gateway'].length).toBeGreaterThan(100);
    expect(s.cloud.lines['/aegis/sandbox/gateway'].some((l) => l.includes('"event":"auth_failure"'))).toBe(true);
  });

  test('secretValues lists every secret written, and none reaches audit.yaml or manifest.json', () => {
    const secrets = sb.secretValues();
    for (const m of Object.values(s.env)) {
      for (const name of ['INTERNAL_SECRET', 'JWT_SECRET_KEY', 'RECEIPT_SIGNING_PRIVATE_KEY', 'ROOT_SIGNING_PRIVATE_KEY']) {
        if (m.has(name)) expect(secrets).toContain(m.get(name));
      }
      // A URL's secret is its password, not its scheme, user or host.
      const db = new URL(m.get('DATABASE_URL') ?? 'x:');
      expect(secrets).toContain(db.password);
      expect(secrets).not.toContain(m.get('DATABASE_URL'));
    }
    // The cloud side's: the auditor's Vault token and the AWS secret key the sandbox sets.
    expect(secrets).toContain(readFileSync(join(sb.dir, 'vault-token'), 'utf8').trim());
    expect(secrets).toContain(process.env.AEGIS_SANDBOX_AWS_SECRET_ACCESS_KEY);
    const public_ = readFileSync(sb.configPath, 'utf8') + readFileSync(join(sb.dir, 'manifest.json'), 'utf8');
    for (const v of secrets) expect(public_.includes(v)).toBe(false);
  });

  test('append continues the chain with valid rows and due roots', async () => {
    await sb.append(150);
    await sb.append(60);
    const after = await snapshot(sb);
    expect(after.rows).toHaveLength(ROWS + 210);
    expect(after.roots.length).toBeGreaterThan(s.roots.length);
    const { rowKeys, rootKeys } = knownKeys(after);
    expect(verifyChain(after, rowKeys, rootKeys)).toEqual({ chainBreak: [], hashMismatch: [], badSignature: [], unknownKey: new Set(), rootMismatch: [] });
    await expect(sb.append(0)).rejects.toThrow(/positive integer/);
  });
});

describe('determinism', () => {
  test('the same seed and clock give the same deployment; another seed does not', async () => {
    const [a, b, c] = await Promise.all([build('all', 3), build('all', 3), build('all', 4)]);
    const [sa, sbb, sc] = await Promise.all([snapshot(a), snapshot(b), snapshot(c)]);
    expect(sbb.rows).toEqual(sa.rows);
    expect(sbb.roots).toEqual(sa.roots);
    expect(sbb.env).toEqual(sa.env);
    expect(sbb.envMtime).toEqual(sa.envMtime);
    expect(sbb.keyLoads).toEqual(sa.keyLoads);
    // The identity side listens where the OS puts it: the JWKS URL in two resources carries its port.
    // Log files and PEM files are named by path, under each sandbox's own folder.
    const portless = (sb: Sandbox) => JSON.parse(JSON.stringify(sb.manifest).replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT').split(sb.dir).join('<dir>')) as typeof a.manifest;
    expect(JSON.stringify(a.manifest)).toContain(a.dir);
    expect(portless(b)).toEqual(portless(a));
    for (const f of ['audit/audit-1.jsonl', 'api/api-1.jsonl']) {
      expect(readFileSync(join(b.dir, 'logs', f), 'utf8')).toBe(readFileSync(join(a.dir, 'logs', f), 'utf8'));
    }
    expect(sbb.cloud).toEqual(sa.cloud);
    expect(sc.cloud.commands).not.toEqual(sa.cloud.commands);
    expect(sc.rows[ROWS - 1].row_hash).not.toBe(sa.rows[ROWS - 1].row_hash);
    expect(sc.env.audit.get('INTERNAL_SECRET')).not.toBe(sa.env.audit.get('INTERNAL_SECRET'));
    expect(sbb.deploy).toEqual(sa.deploy);
    expect(sbb.repo).toEqual(sa.repo);
    expect(sbb.artifacts).toEqual(sa.artifacts);
    // Three complete sandboxes (Postgres, emulators, TLS endpoints) built and observed at once on two cores, beside other suites: a generous functional bound.
  }, 240_000);
});

describe('each violation changes exactly what it declares', () => {
  let baseline: Snapshot;
  beforeAll(async () => {
    baseline = await snapshot(await build('none'));
  });

  const rowIdOf = (resource: string) => Number(/^row=(\d+)$/.exec(resource)?.[1]);
  const changedRows = (a: Snapshot, b: Snapshot, field: keyof Row) =>
    b.rows.filter((r, i) => JSON.stringify(r[field]) !== JSON.stringify(a.rows[i][field])).map((r) => r.id);
  const envDiff = (a: Snapshot, b: Snapshot) => {
    const out: string[] = [];
    for (const svc of Object.keys(a.env)) {
      const names = new Set([...a.env[svc].keys(), ...b.env[svc].keys()]);
      for (const n of names) if (a.env[svc].get(n) !== b.env[svc].get(n)) out.push(`${svc}:${n}`);
    }
    return out.sort();
  };

  // Everything a violation might touch, so "nothing else changed" is asserted for each one.
  function diff(a: Snapshot, b: Snapshot) {
    return {
      rows: b.rows.length === a.rows.length ? changedRows(a, b, 'row_hash').length + changedRows(a, b, 'signature').length + changedRows(a, b, 'payload').length : -1,
      roots: b.roots.filter((r, i) => JSON.stringify(r) !== JSON.stringify(a.roots[i])).map((r) => r.id),
      historical: [a.historical.map((h) => h.fingerprint).join(','), b.historical.map((h) => h.fingerprint).join(',')],
      apiKeys: b.apiKeys.filter((k) => !a.apiKeys.some((x) => x.id === k.id)).map((k) => k.id),
      env: envDiff(a, b),
      pem: [...new Set([...Object.keys(a.pem), ...Object.keys(b.pem)])].filter((k) => a.pem[k] !== b.pem[k]).sort(),
      keyLoads: Object.keys(b.keyLoads).filter((k) => a.keyLoads[k] !== b.keyLoads[k]).map((k) => `${k}=${b.keyLoads[k]}`),
      authFailures: b.authFailures - a.authFailures,
      logLines: b.logLines - a.logLines,
      parameters: b.cloud.parameters.filter((p) => !a.cloud.parameters.includes(p)),
      commands: b.cloud.commands.filter((c) => !a.cloud.commands.includes(c)),
      runtimeFields: a.cloud.runtimeFields.filter((f) => !b.cloud.runtimeFields.includes(f)),
      tokens: Object.keys(b.cloud.tokens).filter((k) => a.cloud.tokens[k] !== b.cloud.tokens[k]).map((k) => `${k}=${b.cloud.tokens[k]}`),
      deploy: [...new Set([...Object.keys(a.deploy), ...Object.keys(b.deploy)])].filter((f) => a.deploy[f] !== b.deploy[f]).sort(),
      repo: [...new Set([...Object.keys(a.repo), ...Object.keys(b.repo)])].filter((f) => a.repo[f] !== b.repo[f]).map((f) => `${f}${f in b.repo ? '' : '=(absent)'}`).sort(),
      artifacts: Object.keys(b.artifacts).filter((k) => a.artifacts[k] !== b.artifacts[k]).map((k) => `${k}=${b.artifacts[k]}`),
      identity: [...new Set([...Object.keys(a.cloud.identity), ...Object.keys(b.cloud.identity)])]
        .filter((k) => a.cloud.identity[k] !== b.cloud.identity[k])
        .map((k) => `${k}=${b.cloud.identity[k] ?? '(absent)'}`)
        .sort(),
    };
  }
  const untouched = (a: Snapshot) => ({
    rows: 0,
    roots: [],
    historical: [a.historical.map((h) => h.fingerprint).join(','), a.historical.map((h) => h.fingerprint).join(',')],
    apiKeys: [],
    env: [],
    pem: [],
    keyLoads: [],
    authFailures: 0,
    logLines: 0,
    parameters: [],
    commands: [],
    runtimeFields: [],
    tokens: [],
    deploy: [],
    repo: [],
    artifacts: [],
    identity: [],
  });
  const field = (resource: string, name: string) => {
    const m = new RegExp(`(?:^|,)${name}=("(?:[^"\\\\]|\\\\.)*"|[^,]*)`).exec(resource)?.[1] ?? '';
    return m.startsWith('"') ? (JSON.parse(m) as string) : m;
  };

  test.each(listViolations().map((v) => v.id))('%s', async (id) => {
    const sb = await build([id]);
    const s = await snapshot(sb);
    const d = diff(baseline, s);
    const expected: Record<string, unknown> = { ...untouched(baseline) };
    const entries = sb.manifest.violations;
    const { rowKeys, rootKeys } = knownKeys(s);
    const v = verifyChain(s, rowKeys, rootKeys);
    const fp = entries.map((e) => /^fingerprint=(.+)$/.exec(e.resource)?.[1]).filter((x): x is string => !!x);
    switch (id) {
      case 'key-source-file':
        expected.keyLoads = ['audit-2/receipt=file'];
        break;
      case 'key-source-generated':
        expected.keyLoads = ['audit-3/root=generated'];
        break;
      case 'receipt-key-not-deployed': {
        expected.env = ['audit:RECEIPT_SIGNING_PRIVATE_KEY'];
        expected.pem = ['receipt-signing.pem'];
        const deployed = s.rows[s.rows.length - 1].key_fingerprint;
        expected.historical = [baseline.historical.map((h) => h.fingerprint).join(','), [...baseline.historical.map((h) => h.fingerprint), deployed].sort().join(',')];
        expect(fingerprint(createPublicKey(s.pem['receipt-signing.pem']))).not.toBe(deployed);
        expect(v.unknownKey.size + v.badSignature.length).toBe(0); // the chain still verifies
        break;
      }
      case 'historical-keys-empty':
        expected.historical = [baseline.historical.map((h) => h.fingerprint).join(','), ''];
        expect([...v.unknownKey].sort()).toEqual(fp.sort());
        break;
      case 'historical-key-orphaned':
        expected.historical = [baseline.historical.map((h) => h.fingerprint).join(','), baseline.historical.map((h) => h.fingerprint).filter((f) => f !== fp[0]).join(',')];
        expect([...v.unknownKey]).toEqual([fp[0]]);
        break;
      case 'bad-signature':
        expected.rows = 1;
        expect(v.badSignature).toEqual([rowIdOf(entries[0].resource)]);
        expect(changedRows(baseline, s, 'signature')).toEqual(v.badSignature);
        break;
      case 'tampered-payload':
        expected.rows = 1;
        expect(v.hashMismatch).toEqual([rowIdOf(entries[0].resource)]);
        expect(changedRows(baseline, s, 'payload')).toEqual(v.hashMismatch);
        expect(v.chainBreak.length + v.badSignature.length).toBe(0);
        break;
      case 'broken-link': {
        const at = rowIdOf(entries[0].resource);
        expect(v.chainBreak).toEqual([at]);
        expect(v.hashMismatch.length + v.badSignature.length + v.rootMismatch.length).toBe(0);
        // Every row from the break on is re-chained; payloads are untouched.
        expect(changedRows(baseline, s, 'payload')).toEqual([]);
        expect(changedRows(baseline, s, 'row_hash')[0]).toBe(at);
        expected.rows = d.rows;
        expected.roots = d.roots;
        expect(d.roots.every((r) => s.roots[r - 1].up_to_id >= at)).toBe(true);
        break;
      }
      case 'root-mismatch':
        expected.roots = [Number(entries[0].resource.replace('root=', ''))];
        expect(v.rootMismatch).toEqual(expected.roots);
        break;
      case 'internal-secret-differs':
        expected.env = ['insight:INTERNAL_SECRET'];
        break;
      case 'internal-secret-missing':
        expected.env = ['api:INTERNAL_SECRET'];
        expect(s.env.api.has('INTERNAL_SECRET')).toBe(false);
        break;
      case 'internal-secret-overlap-too-long':
        expected.env = ['gateway:INTERNAL_SECRET_PREVIOUS'];
        expect(NOW.getTime() - s.envMtime.gateway).toBeGreaterThan(30 * DAY);
        break;
      case 'auth-failure-burst':
        expected.authFailures = 150;
        expected.logLines = 150;
        break;
      case 'dev-fallback-secret':
        expected.env = ['api:AEGIS_MODEL_SIGN_KEY'];
        expect(s.env.api.get('AEGIS_MODEL_SIGN_KEY')).toBe(['dev', 'model', 'sign', 'key', 'change', 'me'].join('-'));
        expect(baseline.env.api.get('AEGIS_MODEL_SIGN_KEY')?.length).toBeGreaterThanOrEqual(32);
        break;
      case 'pem-file-left': {
        expected.pem = ['receipt-signing.pem.bak'];
        const k = createPublicKey(s.pem['receipt-signing.pem.bak']);
        expect(s.historical.map((h) => h.fingerprint)).toContain(fingerprint(k));
        expect(entries.map((e) => e.resource)).toEqual([`path=${join(sb.dir, 'keys', 'receipt-signing.pem.bak')}`]);
        break;
      }
      case 'log-known-secret': {
        expected.logLines = 1;
        const file = field(entries[0].resource, 'stream');
        expect(readFileSync(file, 'utf8')).toContain(s.env.api.get('INTERNAL_SECRET'));
        expect(entries.map((e) => field(e.resource, 'detector'))).toEqual(['known-secret']);
        break;
      }
      case 'log-secret-shapes': {
        expected.logLines = 2;
        const group = field(entries[0].resource, 'stream');
        expect(group).toBe('/aegis/sandbox/gateway'); // the gateway logs to CloudWatch
        const text = s.cloud.lines[group].join('\n');
        for (const v of Object.values(sb.plan.logLeaks.shapes)) expect(text).toContain(v);
        expect(sb.secretValues()).toEqual(expect.arrayContaining(Object.values(sb.plan.logLeaks.shapes)));
        expect(entries.map((e) => field(e.resource, 'detector')).sort()).toEqual(['acp-api-key', 'aws-access-key-id', 'jwt']);
        break;
      }
      case 'api-key-old':
      {
        const keyId = entries[0].resource.replace('api_key=', '');
        expected.apiKeys = [keyId];
        expect(NOW.getTime() - (s.apiKeys.find((k) => k.id === keyId)?.created_at.getTime() ?? NOW.getTime())).toBeGreaterThan(90 * DAY);
        break;
      }
      case 'ssm-literal-secret':
      case 'ssm-secret-in-output':
        expected.commands = [field(entries[0].resource, 'command')];
        break;
      case 'ssm-insecure-parameter':
        expected.parameters = [`${field(entries[0].resource, 'parameter')}:String`];
        break;
      case 'runtime-secret-missing':
        expected.runtimeFields = [field(entries.find((e) => e.check === 'runtime-secrets-present')?.resource ?? '', 'field')];
        // Without the enrolled list the mtls service admits every client.
        expected.identity = ['mtls.unenrolled=200'];
        break;
      case 'auth-mode-none':
        expected.env = ['insight:AUTH_MODE', 'insight:MTLS_ID_HEADER'];
        break;
      case 'enrolled-list-empty':
        expected.identity = ['mtls.unenrolled=200'];
        break;
      case 'oidc-unbound':
        expected.env = ['gateway:OIDC_AUDIENCE', 'gateway:OIDC_ISSUER'];
        expected.identity = ['oidc.other-audience=200'];
        break;
      case 'ingress-accepts-no-cert':
        // Let through without a certificate, with the forged header stripped: the service refuses (401).
        expected.identity = ['mtls.forged-header=401', 'mtls.no-cert=401'];
        break;
      case 'ingress-forwards-forged-header':
        expected.identity = ['mtls.forged-header=200', 'mtls.no-cert=401'];
        break;
      case 'jwks-private-key':
        expected.identity = [`jwks.${field(entries[0].resource, 'kid')}=RSA+private`];
        break;
      case 'jwks-hs-key':
        expected.identity = [`jwks.${field(entries[0].resource, 'kid')}=oct`];
        break;
      case 'oidc-accepts-alg-none':
        expected.identity = ['oidc.alg-none=200'];
        break;
      case 'oidc-accepts-expired':
        expected.identity = ['oidc.expired=200'];
        break;
      case 'cert-expiring':
        expected.identity = ['cert.server=expiring'];
        break;
      case 'cert-long-lived':
        expected.identity = ['cert.client=long-lived'];
        break;
      case 'vault-root-token':
        expected.tokens = [`${field(entries[0].resource, 'token')}=root`];
        break;
      case 'vault-token-no-expiry':
        expected.tokens = [`${field(entries[0].resource, 'token')}=ttl=false,renewable=false`];
        break;
      case 'jwt-rotation-overdue': {
        const jwt = (x: Snapshot) => x.rows.filter((r) => r.action === 'secret_rotated' && (r.payload as { secret: string }).secret === 'JWT_SECRET_KEY');
        expect(jwt(s)).toHaveLength(jwt(baseline).length - 1);
        expect(NOW.getTime() - jwt(s)[jwt(s).length - 1].created_at.getTime()).toBeGreaterThan(90 * DAY);
        expect(verifyChain(s, rowKeys, rootKeys)).toEqual({ chainBreak: [], hashMismatch: [], badSignature: [], unknownKey: new Set(), rootMismatch: [] });
        expected.rows = d.rows;
        expected.roots = d.roots;
        break;
      }
      case 'vault-token-literal':
      case 'vault-token-secret-ref':
      case 'vault-token-docker-env':
      case 'vault-token-ci-secret': {
        // One file changes, and the manifest's line is the one that sets the token.
        const [, file, line] = /^file=deploy:(.+),line=(\d+)$/.exec(entries[0].resource) as RegExpExecArray;
        expected.deploy = [file];
        expect(s.deploy[file].split('\n')[Number(line) - 1]).toMatch(id === 'vault-token-secret-ref' ? /secretKeyRef/ : /VAULT_TOKEN|hvs\./);
        break;
      }
      case 'model-artifact-unsigned':
      case 'model-artifact-error-body':
      case 'model-artifact-wrong-key': {
        const key = field(entries[0].resource, 'artifact').replace(/^dir:/, '');
        expected.artifacts = [`${key}=${{ 'model-artifact-unsigned': 'unsigned', 'model-artifact-error-body': 'error-body', 'model-artifact-wrong-key': 'invalid' }[id]}`];
        expect(baseline.artifacts[key]).toBe('valid');
        break;
      }
      case 'repo-secret-committed': {
        expected.repo = ['aegis/config/settings.py'];
        expect(entries.map((e) => e.resource)).toEqual([`file=aegis:aegis/config/settings.py,detector=known-secret,secret=INTERNAL_SECRET`]);
        const secret = s.env.api.get('INTERNAL_SECRET') ?? '';
        expect(secret.length).toBeGreaterThanOrEqual(32);
        expect(s.repo['aegis/config/settings.py'].split('\n').filter((l) => l.includes(secret))).toHaveLength(1);
        expect(baseline.repo['aegis/config/settings.py']).not.toContain(baseline.env.api.get('INTERNAL_SECRET'));
        break;
      }
      case 'repo-baseline-unreviewed': {
        expected.repo = ['.secrets.baseline', 'scripts/notify-release.sh'];
        // The script's webhook is the one the new baseline entry hashes (SHA-1, as detect-secrets does), and nobody audited it.
        const url = /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/]+/.exec(s.repo['scripts/notify-release.sh'])?.[0] ?? '';
        expect(url).not.toBe('');
        const results = (x: Snapshot) => (JSON.parse(x.repo['.secrets.baseline']) as { results: Record<string, { hashed_secret: string; is_secret?: boolean; line_number: number }[]> }).results;
        expect(Object.keys(results(s)).filter((f) => !(f in results(baseline)))).toEqual(['scripts/notify-release.sh']);
        const [e] = results(s)['scripts/notify-release.sh'];
        expect(e.hashed_secret).toBe(createHash('sha1').update(url).digest('hex'));
        expect(e.is_secret).toBeUndefined();
        expect(s.repo['scripts/notify-release.sh'].split('\n')[e.line_number - 1]).toContain(url);
        expect(entries.map((x) => x.resource).sort()).toEqual(['file=aegis:scripts/notify-release.sh,baseline=unreviewed', 'file=aegis:scripts/notify-release.sh,detector=slack-webhook']);
        break;
      }
      case 'repo-baseline-missing':
        expected.repo = ['.secrets.baseline=(absent)'];
        expect(entries.map((e) => e.resource).sort()).toEqual(['baseline=aegis:.secrets.baseline', 'file=aegis:docs/setup.md,detector=aws-access-key-id', 'file=aegis:tests/fixtures/tokens.py,detector=jwt']);
        break;
      default:
        throw new Error(`no expectation for violation ${id}`);
    }
    expect(d).toEqual(expected);
    expect(entries.length).toBeGreaterThan(0);
  });
});

describe('hostile strings', () => {
  test('reach the deployment where findings quote them, keep file names safe, and stay exact in the manifest', async () => {
    const sb = await build(['key-source-file', 'auth-failure-burst', 'ssm-literal-secret', 'api-key-old'], 11, { hostile: true });
    expect(sb.hostileMarkers().sort()).toEqual([HOSTILE.instance, HOSTILE.client, HOSTILE.parameter, HOSTILE.apiKey].sort());
    expect(readdirSync(join(sb.dir, 'logs', 'audit')).every((f) => /^audit-\d(-\d{8})?\.jsonl$/.test(f))).toBe(true);
    const s = await snapshot(sb);
    expect(s.keyLoads[`audit-2${HOSTILE.instance}/receipt`]).toBe('file');
    expect(s.apiKeys.map((k) => k.id)).toContain(HOSTILE.apiKey);
    expect(s.cloud.lines['/aegis/sandbox/gateway'].filter((l) => l.includes(JSON.stringify(HOSTILE.client).slice(1, -1)))).toHaveLength(150);
    const resources = sb.manifest.violations.map((e) => e.resource);
    expect(resources).toContain(`instance=${JSON.stringify(`audit-2${HOSTILE.instance}`)},key=receipt`);
    expect(resources).toContain(`api_key=${JSON.stringify(HOSTILE.apiKey)}`);
    expect(resources.some((r) => r.endsWith(`,parameter=${JSON.stringify(HOSTILE.parameter)}`))).toBe(true);
    // Without `hostile`, nothing is marked.
    expect((await build(['api-key-old'])).hostileMarkers()).toEqual([]);
  });
});

describe('stop', () => {
  test('stops the emulators: their ports refuse connections afterwards', async () => {
    const sb = await build('none', 21);
    const urls = [sb.cloud?.ssmUrl, sb.cloud?.logsUrl, sb.cloud?.vaultUrl];
    expect(urls.every((u) => typeof u === 'string')).toBe(true);
    await sb.stop();
    for (const u of urls) await expect(fetch(`${u}/v1/sys/health`)).rejects.toThrow();
  });
});

describe('a sandbox built again in its folder', () => {
  test('keeps no PEM file an earlier build left (demo, then demo --violations none)', async () => {
    const first = await build(['pem-file-left', 'receipt-key-not-deployed'], 23);
    expect(readdirSync(join(first.dir, 'keys')).sort()).toEqual(['receipt-signing.pem', 'receipt-signing.pem.bak']);
    await first.stop();
    const again = await buildSandbox({ dir: first.dir, seed: 23, rows: ROWS, violations: 'none', adminUrl: adminUrl(), now: NOW });
    sandboxes.push(again);
    expect(readdirSync(join(again.dir, 'keys'))).toEqual([]);
  });
});

describe('errors', () => {
  test('an unknown violation id fails before anything is built, naming the known ids', async () => {
    const dir = join(tmpdir(), `aegis-sbx-never-${process.pid}`);
    await expect(buildSandbox({ dir, seed: 1, rows: 100, violations: ['bad-signature', 'no-such-thing'], adminUrl: adminUrl() })).rejects.toThrow(
      /unknown violation "no-such-thing".*known violations: key-source-file/,
    );
    expect(() => statSync(dir)).toThrow();
  });
});
