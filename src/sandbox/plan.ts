/**
 * The sandbox deployment as data, before anything is written: its timeline, keys, rotations,
 * broken rows, audit instances, secrets and API keys, all derived from the seed, the clock and
 * the selected violations. build.ts writes it out; violations.ts reads it to declare findings.
 *
 * The baseline (no violation) passes every check: the chain spans 200 days; the receipt key
 * was rotated twice (160 and 100 days ago) with both old keys promoted; INTERNAL_SECRET was
 * last rotated 75 days ago and JWT_SECRET_KEY 30 days ago (quarterly policy); the root key,
 * never rotated, is younger than its yearly policy; every unrevoked API key is under 90 days;
 * every audit instance's latest start loaded both keys from env; the cloud side (cloud.ts)
 * holds references only in deploy history, SecureString secrets, the full runtime secret and
 * expiring, renewable, non-root Vault tokens.
 */
import { derivedBytes, Prng } from './prng';
import { keyPairFromSeed, type Ed25519KeyPair } from './keys';
import type { SandboxTables } from './schema';
import type { JsonValue } from './chain';
import { manifestEntries, type CloudNames, type ManifestContext, type ManifestEntry, type ViolationId } from './violations';
import { cloudNames, HOSTILE_PARAMETER } from './cloud';
import { deployTree, type DeployTree } from './deploy-tree';
import { repoTree, type RepoTree } from './repo-tree';
import { authEnv, HOSTILE_KID, identityNames, type IdentityNames } from './identity';

export const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** How far back the audit log starts. */
export const SPAN_DAYS = 200;
/** The smallest chain on which every violation has its own row. */
export const MIN_ROWS = 40;

export type KeySource = 'env' | 'file' | 'generated';

export interface InstanceStart {
  at: Date;
  receipt: KeySource;
  root: KeySource;
}

export interface AuditInstance {
  name: string;
  starts: InstanceStart[];
}

export type SpecialRow =
  | { kind: 'key_rotated'; key: 'receipt'; oldKey: Ed25519KeyPair; newKey: Ed25519KeyPair }
  | { kind: 'secret_rotated'; secret: 'JWT_SECRET_KEY' | 'INTERNAL_SECRET' }
  | { kind: 'badSignature' }
  | { kind: 'hashMismatch' }
  | { kind: 'chainBreak'; prevHash: string };

export interface ApiKeyRecord {
  id: string;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface PlanOptions {
  seed: number;
  rows: number;
  violations: readonly ViolationId[];
  deployment: string;
  services: readonly string[];
  signingService: string;
  schema: string;
  tables: SandboxTables;
  now: Date;
  /** Whether the cloud side (SSM, CloudWatch Logs, Vault emulators) is part of the deployment (default true). */
  cloud?: boolean;
  /** Seed markup-bearing strings into names that reach findings (default false). */
  hostile?: boolean;
  /** Absolute folder the deployment's files are written to (file log streams are named by it); default the working directory. */
  dir?: string;
}

/** Secret-shaped tokens the `log-secret-shapes` violation writes into a log (and the canary looks for). */
export interface LogShapes {
  jwt: string;
  acpKey: string;
  awsKeyId: string;
}

/**
 * Strings that try to run script wherever a report renders them, each setting a different
 * `window.__pwned` so a browser test can tell which one got through. Each goes where the
 * configuration schema does not constrain it, and reaches a finding's resource or message.
 */
export const HOSTILE = {
  /** An audit instance name (signing_key_loaded events; the key-source violations). */
  instance: '"><script>window.__pwned=1</script>',
  /** An auth-failure `client` (the burst's top source). */
  client: '"><img src=x onerror="window.__pwned=2">',
  /** A deploy-command parameter name (the literal secret in SSM's history). */
  parameter: HOSTILE_PARAMETER,
  /** An API key id (the old API key). */
  apiKey: 'ak_<script>window.__pwned=4</script>',
  /** A JWKS key id (the symmetric key of jwks-hs-key). */
  kid: HOSTILE_KID,
} as const;

export interface Plan {
  readonly opts: PlanOptions;
  readonly selected: ReadonlySet<ViolationId>;
  readonly firstRowAt: Date;
  readonly lastRowAt: Date;
  readonly rootEvery: number;
  /** Receipt keys in the order they signed rows: K0, K1, K2 (the deployed one). */
  readonly receiptKeys: readonly Ed25519KeyPair[];
  /** A receipt key generated for a rotation that was never deployed. */
  readonly undeployedReceiptKey: Ed25519KeyPair;
  readonly rootKey: Ed25519KeyPair;
  /** The receipt key the env file and the PEM file hold. */
  readonly configuredReceiptKey: Ed25519KeyPair;
  readonly historicalKeys: readonly { key: Ed25519KeyPair; promotedAt: Date }[];
  /** Row id → what is special about it; other rows are ordinary activity. */
  readonly specials: ReadonlyMap<number, SpecialRow>;
  /** Root ids whose root_hash is wrong. */
  readonly tamperedRoots: ReadonlySet<number>;
  readonly instances: readonly AuditInstance[];
  readonly roles: { drift?: string; missing?: string; overlap?: string };
  readonly secrets: { internal: string; internalPrevious: string; internalDrifted: string; jwt: string };
  /** The log instance (`gateway-1`) that takes the `auth-failure-burst`. */
  readonly burstInstance: string;
  /** The client address of the burst (hostile markup with `hostile`). */
  readonly burstClient: string;
  /** Whether the cloud side is part of the deployment. */
  readonly cloud: boolean;
  /** Services whose logs live in CloudWatch (the ones logging auth failures), not in files. */
  readonly cloudLogServices: readonly string[];
  readonly cloudNames: CloudNames;
  /** The hostile strings that reach the seeded violations' findings (empty without `hostile`). */
  readonly hostileMarkers: readonly string[];
  /** Services whose env file holds JWT_SECRET_KEY. */
  readonly jwtServices: readonly string[];
  /** When each service's env file was last written (its mtime). */
  readonly envMtime: ReadonlyMap<string, Date>;
  readonly apiKeys: readonly ApiKeyRecord[];
  /** The deploy tree (manifests, compose file, Dockerfile, workflows) and where its violations are. */
  readonly deployTree: DeployTree;
  /** The repository checkout (source, docs, fixtures, its detect-secrets baseline). */
  readonly repoTree: RepoTree;
  /** The log violations: which instance's log leaks INTERNAL_SECRET, which one the shapes, and the shapes. */
  readonly logLeaks: { knownSecretInstance: string; shapesInstance: string; shapes: LogShapes };
  /** The service whose env file holds AEGIS_MODEL_SIGN_KEY. */
  readonly modelSignService: string;
  readonly manifestContext: ManifestContext;
  /** The identity side's names (endpoints, kids, the auditor's CN). */
  readonly identity: IdentityNames;
  /** Auth settings per service (AUTH_MODE, OIDC_*, MTLS_ID_HEADER) for the env files. */
  readonly authEnv: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The enrolled list (clients/allowed) as Vault holds it: a list, the string "[]", or absent. */
  readonly enrolledInVault: readonly string[] | string | undefined;
  /** The enrolled list as the services parse it. */
  readonly enrolled: readonly string[];
  rowTime(id: number): Date;
  receiptKeyForRow(id: number): Ed25519KeyPair;
  /** The findings the seeded violations make; `identity` once the identity side listens (its JWKS URL). */
  manifest(extra?: { identity?: IdentityNames }): ManifestEntry[];
  /** INTERNAL_SECRET of a service as deployed (undefined where the missing violation removed it). */
  internalSecretOf(service: string): string | undefined;
}

function secretValue(seed: number, label: string, bytes = 32): string {
  return derivedBytes(seed, label, bytes).toString('base64url');
}

export function buildPlan(opts: PlanOptions): Plan {
  const { seed, rows, now } = opts;
  if (!Number.isInteger(rows) || rows < MIN_ROWS) throw new Error(`rows must be an integer of at least ${MIN_ROWS} (got ${rows})`);
  if (!opts.services.includes(opts.signingService)) {
    throw new Error(`the signing-key service "${opts.signingService}" is not among the services (${opts.services.join(', ')})`);
  }
  const selected = new Set(opts.violations);
  const has = (id: ViolationId) => selected.has(id);
  const nowMs = now.getTime();
  const ago = (ms: number) => new Date(nowMs - ms);

  const firstRowAt = ago(SPAN_DAYS * DAY_MS);
  const lastRowAt = ago(5 * 60_000);
  const step = (lastRowAt.getTime() - firstRowAt.getTime()) / (rows - 1);
  const jitterMax = Math.max(1, Math.floor(step / 4));
  const rowTime = (id: number): Date => {
    // Even spacing plus a deterministic jitter smaller than a quarter step keeps time increasing.
    const base = firstRowAt.getTime() + Math.floor((id - 1) * step);
    const jitter = id === 1 || id === rows ? 0 : Math.imul(id, 2654435761) >>> 0;
    return new Date(base + (jitter % jitterMax));
  };
  const idAt = (fraction: number) => 1 + Math.round(fraction * (rows - 1));

  // ---- keys
  const receiptKeys = [0, 1, 2].map((i) => keyPairFromSeed(derivedBytes(seed, `receipt-${i}`)));
  const undeployedReceiptKey = keyPairFromSeed(derivedBytes(seed, 'receipt-3'));
  const rootKey = keyPairFromSeed(derivedBytes(seed, 'root-0'));

  // ---- special rows (fractions of the 200-day span: 0.5 = 100 days ago)
  const ids = {
    internal1: idAt(0.175),
    receipt1: idAt(0.2),
    jwt1: idAt(0.4),
    receipt2: idAt(0.5),
    internal2: idAt(0.625),
    badSignature: idAt(0.7),
    hashMismatch: idAt(0.75),
    jwt2: idAt(0.85),
    chainBreak: idAt(0.9),
  };
  if (new Set(Object.values(ids)).size !== Object.keys(ids).length) throw new Error(`rows=${rows} is too few to place every special row`);
  const prng = new Prng(seed, 'plan');
  const specials = new Map<number, SpecialRow>();
  specials.set(ids.internal1, { kind: 'secret_rotated', secret: 'INTERNAL_SECRET' });
  specials.set(ids.receipt1, { kind: 'key_rotated', key: 'receipt', oldKey: receiptKeys[0], newKey: receiptKeys[1] });
  specials.set(ids.jwt1, { kind: 'secret_rotated', secret: 'JWT_SECRET_KEY' });
  specials.set(ids.receipt2, { kind: 'key_rotated', key: 'receipt', oldKey: receiptKeys[1], newKey: receiptKeys[2] });
  specials.set(ids.internal2, { kind: 'secret_rotated', secret: 'INTERNAL_SECRET' });
  if (!has('jwt-rotation-overdue')) specials.set(ids.jwt2, { kind: 'secret_rotated', secret: 'JWT_SECRET_KEY' });
  if (has('bad-signature')) specials.set(ids.badSignature, { kind: 'badSignature' });
  if (has('tampered-payload')) specials.set(ids.hashMismatch, { kind: 'hashMismatch' });
  const deletedRowHash = prng.hex(32);
  if (has('broken-link')) specials.set(ids.chainBreak, { kind: 'chainBreak', prevHash: deletedRowHash });

  const receiptKeyForRow = (id: number): Ed25519KeyPair => (id < ids.receipt1 ? receiptKeys[0] : id < ids.receipt2 ? receiptKeys[1] : receiptKeys[2]);

  // About 20 roots however large the chain, at most one per 1000 rows.
  const rootEvery = Math.max(1, Math.min(1000, Math.floor(rows / 20)));
  const tamperedRoot = Math.max(1, Math.round((0.66 * rows) / rootEvery));
  const tamperedRoots = new Set<number>(has('root-mismatch') ? [tamperedRoot] : []);

  // ---- which receipt key is configured, and what the historical table holds
  const configuredReceiptKey = has('receipt-key-not-deployed') ? undeployedReceiptKey : receiptKeys[2];
  let historicalKeys: { key: Ed25519KeyPair; promotedAt: Date }[] = [
    { key: receiptKeys[0], promotedAt: new Date(rowTime(ids.receipt1).getTime() - HOUR_MS) },
    { key: receiptKeys[1], promotedAt: new Date(rowTime(ids.receipt2).getTime() - HOUR_MS) },
  ];
  // The runbook's first step (promote the deployed key) was done; the deploy never happened.
  if (has('receipt-key-not-deployed')) historicalKeys.push({ key: receiptKeys[2], promotedAt: ago(2 * DAY_MS) });
  if (has('historical-key-orphaned')) historicalKeys = historicalKeys.filter((h) => h.key !== receiptKeys[1]);
  if (has('historical-keys-empty')) historicalKeys = [];

  // ---- audit instances: several starts each; the latest counts, however long ago. One
  // instance last started 12 days ago, two 2 days ago and 5 hours ago: a daemon's first run
  // must look back past any log window to judge them all.
  const svc = opts.signingService;
  const hostile = opts.hostile ?? false;
  const instances: AuditInstance[] = [
    {
      name: `${svc}-1`,
      starts: [
        // An old incident, fixed by a later restart: only the latest start counts.
        { at: ago(156 * HOUR_MS), receipt: 'file', root: 'env' },
        { at: ago(100 * HOUR_MS), receipt: 'env', root: 'env' },
        { at: ago(48 * HOUR_MS), receipt: 'env', root: 'env' },
      ],
    },
    {
      name: hostile ? `${svc}-2${HOSTILE.instance}` : `${svc}-2`,
      starts: [
        { at: ago(20 * DAY_MS), receipt: 'env', root: 'generated' },
        { at: ago(16 * DAY_MS), receipt: 'env', root: 'env' },
        { at: ago(12 * DAY_MS), receipt: has('key-source-file') ? 'file' : 'env', root: 'env' },
      ],
    },
    {
      name: `${svc}-3`,
      starts: [
        { at: ago(50 * HOUR_MS), receipt: 'env', root: 'env' },
        { at: ago(5 * HOUR_MS), receipt: 'env', root: has('key-source-generated') ? 'generated' : 'env' },
      ],
    },
  ];

  // ---- services' roles in the INTERNAL_SECRET violations
  const others = opts.services.filter((s) => s !== svc);
  const roles = { drift: others.at(-1), missing: others.at(-2), overlap: others.at(-3) };
  const needs: [ViolationId, keyof typeof roles][] = [
    ['internal-secret-differs', 'drift'],
    ['internal-secret-missing', 'missing'],
    ['internal-secret-overlap-too-long', 'overlap'],
  ];
  for (const [id, r] of needs) {
    if (has(id) && !roles[r]) throw new Error(`violation ${id} needs more services besides "${svc}" (have: ${opts.services.join(', ')})`);
  }

  const secrets = {
    internal: secretValue(seed, 'INTERNAL_SECRET'),
    internalPrevious: secretValue(seed, 'INTERNAL_SECRET.previous'),
    internalDrifted: secretValue(seed, 'INTERNAL_SECRET.drifted'),
    jwt: secretValue(seed, 'JWT_SECRET_KEY', 48),
  };
  const jwtServices: string[] = opts.services.filter((s) => s === 'identity' || s === 'gateway');

  const burstService = opts.services.find((s) => s === 'gateway') ?? opts.services.find((s) => s === 'identity');
  if (has('auth-failure-burst') && !burstService) throw new Error('violation auth-failure-burst needs a "gateway" or "identity" service');
  const burstInstance = `${burstService ?? 'gateway'}-1`;
  const burstClient = hostile ? HOSTILE.client : '192.0.2.66';
  const cloud = opts.cloud ?? true;
  // Auth failures are logged to CloudWatch only (the file logs of these services are not
  // written), so a burst is counted once whatever the log checks read.
  const cloudLogServices = cloud ? opts.services.filter((s) => (s === 'gateway' || s === 'identity') && s !== svc) : [];
  const names = cloudNames(seed, opts.deployment, opts.services, { hostile });

  const lastJwt = rowTime(has('jwt-rotation-overdue') ? ids.jwt1 : ids.jwt2);
  const lastInternal = rowTime(ids.internal2);
  const envMtime = new Map<string, Date>();
  for (const s of opts.services) {
    let t = lastInternal;
    if (jwtServices.includes(s) && lastJwt > t) t = lastJwt;
    if (s === svc && has('receipt-key-not-deployed')) t = ago(2 * DAY_MS);
    if (has('internal-secret-overlap-too-long') && s === roles.overlap) t = lastInternal; // the overlap opened at the rotation
    if (has('internal-secret-differs') && s === roles.drift) t = ago(3 * DAY_MS);
    if (has('internal-secret-missing') && s === roles.missing) t = ago(10 * DAY_MS);
    envMtime.set(s, t);
  }

  // ---- API keys: all young (or revoked) unless a violation adds an old one
  const keyPrng = new Prng(seed, 'api-keys');
  const apiKeys: ApiKeyRecord[] = [];
  const newKey = (createdDaysAgo: number, revokedDaysAgo: number | null): ApiKeyRecord => {
    const createdAt = ago(Math.round(createdDaysAgo * DAY_MS));
    return {
      id: `ak_${keyPrng.hex(6)}`,
      prefix: `acp_${keyPrng.hex(3)}`,
      createdAt,
      lastUsedAt: revokedDaysAgo === null ? ago(keyPrng.int(60_000, 2 * DAY_MS)) : ago(Math.round((revokedDaysAgo + 1) * DAY_MS)),
      revokedAt: revokedDaysAgo === null ? null : ago(Math.round(revokedDaysAgo * DAY_MS)),
    };
  };
  for (let i = 0; i < 12; i++) apiKeys.push(newKey(2 + keyPrng.next() * 78, null));
  apiKeys.push(newKey(200, 100), newKey(150, 95)); // old but revoked: not findings
  const oldApiKey = newKey(120, null);
  if (hostile) oldApiKey.id = HOSTILE.apiKey;
  if (has('api-key-old')) apiKeys.push(oldApiKey);

  const tree = deployTree({ seed, deployment: opts.deployment, services: opts.services, selected });
  const repo = repoTree({ seed, internalSecret: secrets.internal, selected, now: opts.now });
  const identity = identityNames(seed, opts.deployment, opts.services, { hostile });
  const enrolledInVault: readonly string[] | string | undefined = has('runtime-secret-missing')
    ? undefined
    : has('enrolled-list-empty')
      ? '[]'
      : ['client-alpha', 'client-beta', identity.auditorCn];
  const enrolled = Array.isArray(enrolledInVault) ? [...enrolledInVault] : [];
  // ---- log leaks: the api service dumps INTERNAL_SECRET, the gateway logs secret-shaped tokens
  const others2 = opts.services.filter((s) => s !== svc);
  const knownSecretService = others2.find((s) => s === 'api') ?? others2[0] ?? svc;
  const shapesService = others2.find((s) => s === 'gateway') ?? others2.find((s) => s === 'identity') ?? others2[0] ?? svc;
  const b32 = (label: string, n: number) => [...derivedBytes(seed, label, n)].map((b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[b % 32]).join('');
  const logShapes: LogShapes = {
    jwt: [
      Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url'),
      Buffer.from(JSON.stringify({ sub: `user-${derivedBytes(seed, 'log-jwt-sub', 4).toString('hex')}`, aud: 'aegis-gateway', exp: Math.floor(nowMs / 1000) + 900 })).toString('base64url'),
      derivedBytes(seed, 'log-jwt-signature', 32).toString('base64url'),
    ].join('.'),
    acpKey: `acp_k${derivedBytes(seed, 'log-acp-key', 18).toString('hex')}7`,
    awsKeyId: `AKIA${b32('log-aws-key-id', 16)}`,
  };
  const logStream = (service: string, instance: string) =>
    cloudLogServices.includes(service) ? `/aegis/${opts.deployment}/${service}` : `${(opts.dir ?? process.cwd()).replace(/\/+$/, '')}/logs/${service}/${instance}.jsonl`;
  const logLeaks = { knownSecretInstance: `${knownSecretService}-1`, shapesInstance: `${shapesService}-1`, shapes: logShapes };

  const knownFingerprints = new Set([configuredReceiptKey.fingerprint, ...historicalKeys.map((h) => h.key.fingerprint)]);
  const manifestContext: ManifestContext = {
    selected,
    historicalKeysTable: opts.tables.historical_keys,
    instances: { fileFallback: instances[1].name, generated: instances[2].name },
    rowFingerprints: receiptKeys.map((k) => k.fingerprint),
    knownFingerprints,
    orphanedFingerprint: receiptKeys[1].fingerprint,
    rows: {
      badSignature: { id: ids.badSignature, fingerprint: receiptKeyForRow(ids.badSignature).fingerprint },
      hashMismatch: ids.hashMismatch,
      chainBreak: ids.chainBreak,
    },
    tamperedRoot,
    oldApiKeyId: oldApiKey.id,
    roles,
    cloud: names,
    deployHits: tree.hits,
    identity,
    modelSignService: knownSecretService,
    pemDir: `${(opts.dir ?? process.cwd()).replace(/\/+$/, '')}/keys`,
    logLeaks: {
      knownSecretStream: logStream(knownSecretService, logLeaks.knownSecretInstance),
      shapesStream: logStream(shapesService, logLeaks.shapesInstance),
    },
  };
  const hostileMarkers: string[] = [];
  if (hostile) {
    if (has('key-source-file')) hostileMarkers.push(HOSTILE.instance);
    if (has('auth-failure-burst')) hostileMarkers.push(HOSTILE.client);
    if (has('ssm-literal-secret')) hostileMarkers.push(HOSTILE.parameter);
    if (has('api-key-old')) hostileMarkers.push(HOSTILE.apiKey);
    if (has('jwks-hs-key') && cloud) hostileMarkers.push(HOSTILE.kid);
  }
  const internalSecretOf = (service: string): string | undefined => {
    if (roles.missing === service && has('internal-secret-missing')) return undefined;
    return roles.drift === service && has('internal-secret-differs') ? secrets.internalDrifted : secrets.internal;
  };

  return {
    opts,
    selected,
    firstRowAt,
    lastRowAt,
    rootEvery,
    receiptKeys,
    undeployedReceiptKey,
    rootKey,
    configuredReceiptKey,
    historicalKeys,
    specials,
    tamperedRoots,
    instances,
    roles,
    secrets,
    burstInstance,
    burstClient,
    cloud,
    cloudLogServices,
    cloudNames: names,
    hostileMarkers,
    jwtServices,
    envMtime,
    apiKeys,
    deployTree: tree,
    repoTree: repo,
    logLeaks,
    modelSignService: knownSecretService,
    manifestContext,
    identity,
    authEnv: authEnv(identity, opts.services, selected),
    enrolledInVault,
    enrolled,
    rowTime,
    receiptKeyForRow,
    manifest: (extra) => manifestEntries({ ...manifestContext, ...(extra?.identity ? { identity: extra.identity } : {}) }),
    internalSecretOf,
  };
}

/** The payload a special row carries (rotation rows), or undefined for activity rows. */
export function rotationPayload(s: SpecialRow): { action: string; payload: JsonValue } | undefined {
  if (s.kind === 'key_rotated') {
    return { action: 'key_rotated', payload: { key: s.key, old_fingerprint: s.oldKey.fingerprint, new_fingerprint: s.newKey.fingerprint } };
  }
  if (s.kind === 'secret_rotated') return { action: 'secret_rotated', payload: { secret: s.secret } };
  return undefined;
}
