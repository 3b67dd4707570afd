/**
 * The violation catalog: every way the sandbox can be seeded to break a compliance rule, and
 * the findings (check id + resource, exactly as docs/findings.md builds them) each one makes
 * the checks report. A violation is selected by its own id or by a check id (all of that
 * check's violations); any combination can be seeded together. The cloud violations (SSM,
 * Vault) are ordinary entries marked `cloud`: they need the sandbox's emulators.
 *
 * Entries are declared against the final deployment (a {@link ManifestContext}), not in
 * isolation, because some violations change what others cause: an empty historical-keys
 * table subsumes an orphaned fingerprint, and a receipt key whose only public copy was the
 * promoted table entry becomes unknown, so a bad signature under it can no longer be seen.
 */
import { resource } from '../core/finding';
import type { Severity } from '../core/types';
import type { IdentityNames } from './identity';
import { REPO_BASELINE, REPO_FILES, REPO_ROOT } from './repo-tree';

export interface ManifestEntry {
  check: string;
  resource: string;
}

export const VIOLATION_IDS = [
  'key-source-file',
  'key-source-generated',
  'receipt-key-not-deployed',
  'historical-keys-empty',
  'historical-key-orphaned',
  'bad-signature',
  'tampered-payload',
  'broken-link',
  'root-mismatch',
  'internal-secret-differs',
  'internal-secret-missing',
  'internal-secret-overlap-too-long',
  'auth-failure-burst',
  'api-key-old',
  'jwt-rotation-overdue',
  'ssm-literal-secret',
  'ssm-insecure-parameter',
  'ssm-secret-in-output',
  'runtime-secret-missing',
  'vault-root-token',
  'vault-token-no-expiry',
  'vault-token-literal',
  'vault-token-secret-ref',
  'vault-token-docker-env',
  'vault-token-ci-secret',
  'model-artifact-unsigned',
  'model-artifact-error-body',
  'model-artifact-wrong-key',
  'auth-mode-none',
  'enrolled-list-empty',
  'oidc-unbound',
  'ingress-accepts-no-cert',
  'ingress-forwards-forged-header',
  'jwks-private-key',
  'jwks-hs-key',
  'oidc-accepts-alg-none',
  'oidc-accepts-expired',
  'cert-expiring',
  'cert-long-lived',
  'log-known-secret',
  'log-secret-shapes',
  'dev-fallback-secret',
  'pem-file-left',
  'repo-secret-committed',
  'repo-baseline-unreviewed',
  'repo-baseline-missing',
] as const;

export type ViolationId = (typeof VIOLATION_IDS)[number];

/**
 * The names the cloud violations put into the emulators (cloud.ts seeds them, the catalog
 * declares the findings): derived from the seed and the services alone, so both sides agree.
 */
export interface CloudNames {
  /** Parameter Store hierarchy of the deployment (`/aegis/<deployment>`). */
  path: string;
  literalCommand: string;
  /** The deploy-command parameter that carries INTERNAL_SECRET literally. */
  literalParameter: string;
  /** Full name of the secret-named String parameter. */
  insecureParameter: string;
  outputCommand: string;
  /** The instance whose command output echoes JWT_SECRET_KEY. */
  outputInstance: string;
  /** Service names of the Vault tokens (the `token=` label is the configured name). */
  rootTokenService: string;
  noExpiryTokenService: string;
  /** The runtime secret's KV v2 path and the field the violation removes. */
  runtimeKvPath: string;
  runtimeMissingField: string;
  /** Model artifacts (keys under the artifacts directory) the model-artifact violations break. */
  unsignedArtifact: string;
  errorBodyArtifact: string;
  wrongKeyArtifact: string;
}

/** What the entries of a violation depend on: the deployment as finally seeded. */
export interface ManifestContext {
  selected: ReadonlySet<ViolationId>;
  /** Name of the historical keys table (the `table=` of emptyAfterRotation). */
  historicalKeysTable: string;
  /** The audit instances whose latest start loads a key badly. */
  instances: { fileFallback: string; generated: string };
  /** Every receipt-key fingerprint that signed audit rows. */
  rowFingerprints: readonly string[];
  /** Fingerprints the auditor can find a public key for: configured keys and table entries. */
  knownFingerprints: ReadonlySet<string>;
  /** The old receipt key the `historical-key-orphaned` violation leaves out of the table. */
  orphanedFingerprint: string;
  /** The rows and root the receipt-chain violations break, and the key that signed each row. */
  rows: { badSignature: { id: number; fingerprint: string }; hashMismatch: number; chainBreak: number };
  tamperedRoot: number;
  /** Id of the API key the `api-key-old` violation adds. */
  oldApiKeyId: string;
  /** Services given a role by the internal-secret violations (undefined when the service set is too small). */
  roles: { drift?: string; missing?: string; overlap?: string };
  cloud: CloudNames;
  /** Where the deploy tree sets VAULT_TOKEN for each seeded static-vault-token violation. */
  deployHits: Partial<Record<ViolationId, { file: string; line: number }>>;
  /** The identity side (TLS endpoints, OIDC issuer): its names, and the JWKS URL once it listens. */
  identity: IdentityNames;
  /** The log streams the log violations write to, as the auditor names them (a file path or a CloudWatch group). */
  logLeaks: { knownSecretStream: string; shapesStream: string };
  /** The service whose env file holds AEGIS_MODEL_SIGN_KEY (the dev-fallback violation sets it to Aegis's fallback). */
  modelSignService: string;
  /** Absolute folder of the PEM fallback files (`pem_files`), as the auditor names files in it. */
  pemDir: string;
}

export interface Violation {
  id: ViolationId;
  /** The check that reports it. */
  check: string;
  severity: Exclude<Severity, 'info'>;
  description: string;
  /** Whether `all` seeds it; false only where it would hide another violation entirely. */
  inAll: boolean;
  /** Seeded into the SSM / Vault emulators: needs the sandbox's cloud side. */
  cloud: boolean;
  /** Seeded into the identity side (TLS endpoints, OIDC issuer), which starts with the cloud side. */
  identity?: boolean;
  entries(ctx: ManifestContext): ManifestEntry[];
}

function unknownKeys(ctx: ManifestContext): ManifestEntry[] {
  return ctx.rowFingerprints
    .filter((fp) => !ctx.knownFingerprints.has(fp))
    .map((fp) => ({ check: 'receipt-chain', resource: resource({ fingerprint: fp }) }));
}

function deployHit(ctx: ManifestContext, id: ViolationId): ManifestEntry[] {
  const hit = ctx.deployHits[id];
  if (!hit) throw new Error(`the deploy tree does not place ${id}`);
  return [{ check: 'static-vault-token', resource: resource({ file: hit.file, line: hit.line }) }];
}

/** An empty enrolled list: auth-mode says so, and the mTLS endpoint admits a valid unenrolled certificate. */
function enrolledListEmpty(c: ManifestContext): ManifestEntry[] {
  return [
    { check: 'auth-mode', resource: resource({ path: c.cloud.runtimeKvPath, field: c.cloud.runtimeMissingField }) },
    { check: 'mtls-enforced', resource: resource({ endpoint: c.identity.mtlsEndpoint, probe: 'unenrolled' }) },
  ];
}

function role(ctx: ManifestContext, name: keyof ManifestContext['roles']): string {
  const s = ctx.roles[name];
  if (!s) throw new Error(`no service for the ${name} role`);
  return s;
}

const CATALOG: readonly Violation[] = [
  {
    id: 'key-source-file',
    check: 'signing-key-source',
    severity: 'high',
    description: 'one audit instance last started with the receipt key from the PEM file fallback',
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'signing-key-source', resource: resource({ instance: c.instances.fileFallback, key: 'receipt' }) }],
  },
  {
    id: 'key-source-generated',
    check: 'signing-key-source',
    severity: 'critical',
    description: 'one audit instance last started with a root key generated in memory',
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'signing-key-source', resource: resource({ instance: c.instances.generated, key: 'root' }) }],
  },
  {
    id: 'receipt-key-not-deployed',
    check: 'signing-key-fingerprint',
    severity: 'critical',
    description:
      'a new receipt key was written to the env file and the PEM file (and the old one promoted) but never deployed: recent rows are still signed by the old key',
    inAll: true,
    cloud: false,
    entries: (c) => [
      { check: 'signing-key-fingerprint', resource: resource({ key: 'receipt', source: 'env_file' }) },
      { check: 'signing-key-fingerprint', resource: resource({ key: 'receipt', source: 'pem_file' }) },
      // The new key was also written to the PEM fallback path, where a key loaded from env should not be.
      { check: 'pem-files-at-rest', resource: resource({ path: `${c.pemDir}/receipt-signing.pem` }) },
    ],
  },
  {
    id: 'historical-keys-empty',
    check: 'historical-keys',
    severity: 'critical',
    description: 'receipt keys were rotated but transparency_historical_keys is empty; rows signed by old keys have no public key',
    // Seeding it with the orphan would hide the orphan; `all` shows the orphan instead.
    inAll: false,
    cloud: false,
    entries: (c) => [{ check: 'historical-keys', resource: resource({ table: c.historicalKeysTable }) }, ...unknownKeys(c)],
  },
  {
    id: 'historical-key-orphaned',
    check: 'historical-keys',
    severity: 'critical',
    description: 'one old receipt key fingerprint on audit rows was never promoted to the historical keys table',
    inAll: true,
    cloud: false,
    entries: (c) =>
      c.selected.has('historical-keys-empty')
        ? [] // the empty table subsumes the orphan (docs/findings.md)
        : [{ check: 'historical-keys', resource: resource({ fingerprint: c.orphanedFingerprint }) }, ...unknownKeys(c)],
  },
  {
    id: 'bad-signature',
    check: 'receipt-chain',
    severity: 'critical',
    description: 'one audit row carries a signature that does not verify under its key',
    inAll: true,
    cloud: false,
    // A signature under a key nobody has cannot be checked: that key is reported as unknown instead.
    entries: (c) =>
      c.knownFingerprints.has(c.rows.badSignature.fingerprint)
        ? [{ check: 'receipt-chain', resource: resource({ row: c.rows.badSignature.id }) }]
        : [],
  },
  {
    id: 'tampered-payload',
    check: 'receipt-chain',
    severity: 'critical',
    description: "one audit row's payload was edited after it was hashed and signed",
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'receipt-chain', resource: resource({ row: c.rows.hashMismatch }) }],
  },
  {
    id: 'broken-link',
    check: 'receipt-chain',
    severity: 'critical',
    description: "one audit row's prev_hash is not the previous row's hash (a row went missing)",
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'receipt-chain', resource: resource({ row: c.rows.chainBreak }) }],
  },
  {
    id: 'root-mismatch',
    check: 'receipt-chain',
    severity: 'critical',
    description: "one transparency root's root_hash is not the hash of its row",
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'receipt-chain', resource: resource({ root: c.tamperedRoot }) }],
  },
  {
    id: 'internal-secret-differs',
    check: 'internal-secret-drift',
    severity: 'high',
    description: 'one service holds an INTERNAL_SECRET the others do not, with no overlap to explain it',
    inAll: true,
    cloud: false,
    entries: () => [{ check: 'internal-secret-drift', resource: resource({ secret: 'INTERNAL_SECRET' }) }],
  },
  {
    id: 'internal-secret-missing',
    check: 'internal-secret-drift',
    severity: 'high',
    description: 'one service has no INTERNAL_SECRET',
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'internal-secret-drift', resource: resource({ service: role(c, 'missing'), secret: 'INTERNAL_SECRET' }) }],
  },
  {
    id: 'internal-secret-overlap-too-long',
    check: 'internal-secret-drift',
    severity: 'medium',
    description: 'one service kept INTERNAL_SECRET_PREVIOUS since the last rotation, 75 days ago',
    inAll: true,
    cloud: false,
    // While INTERNAL_SECRET drifts, the check reports the drift alone: an overlap's age means
    // nothing until the services agree on the current value.
    entries: (c) =>
      c.selected.has('internal-secret-differs')
        ? []
        : [{ check: 'internal-secret-drift', resource: resource({ service: role(c, 'overlap'), secret: 'INTERNAL_SECRET_PREVIOUS' }) }],
  },
  {
    id: 'auth-failure-burst',
    check: 'auth-failure-spike',
    severity: 'high',
    description:
      'one client failed authentication 150 times at the gateway in the last 10 minutes, in CloudWatch (or the log files without the cloud side); time-sensitive: audit within 5 minutes of building',
    inAll: true,
    cloud: false,
    entries: (c) => cloudEntries('auth-failure-burst', c.cloud),
  },
  {
    id: 'api-key-old',
    check: 'credential-age',
    severity: 'medium',
    description: 'one unrevoked API key was created 120 days ago',
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'credential-age', resource: resource({ api_key: c.oldApiKeyId }) }],
  },
  {
    id: 'jwt-rotation-overdue',
    check: 'credential-age',
    severity: 'medium',
    description: 'JWT_SECRET_KEY was last rotated 120 days ago (policy: quarterly)',
    inAll: true,
    cloud: false,
    entries: () => [{ check: 'credential-age', resource: resource({ secret: 'JWT_SECRET_KEY' }) }],
  },
  {
    id: 'ssm-literal-secret',
    check: 'ssm-persisted-secrets',
    severity: 'critical',
    description: "a hotfix deploy command passed INTERNAL_SECRET literally, not as an {{ssm-secure:…}} reference: it sits in SSM's command history",
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('ssm-literal-secret', c.cloud),
  },
  {
    id: 'ssm-insecure-parameter',
    check: 'ssm-persisted-secrets',
    severity: 'high',
    description: 'a secret-named parameter (GROQ_API_KEY) is stored as a String, not a SecureString',
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('ssm-insecure-parameter', c.cloud),
  },
  {
    id: 'ssm-secret-in-output',
    check: 'ssm-persisted-secrets',
    severity: 'critical',
    description: 'a debug deploy printed JWT_SECRET_KEY into its command output on one instance',
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('ssm-secret-in-output', c.cloud),
  },
  {
    id: 'runtime-secret-missing',
    check: 'runtime-secrets-present',
    severity: 'critical',
    description: 'the runtime secret in Vault (secret/data/aegis/runtime) has no clients/allowed field',
    inAll: true,
    cloud: true,
    // Without the field an mtls service's enrolled list is empty: it admits every client.
    entries: (c) => [...cloudEntries('runtime-secret-missing', c.cloud), ...enrolledListEmpty(c)],
  },
  {
    id: 'vault-root-token',
    check: 'vault-token-hygiene',
    severity: 'high',
    description: 'one service runs with a Vault root token',
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('vault-root-token', c.cloud),
  },
  {
    id: 'vault-token-no-expiry',
    check: 'vault-token-hygiene',
    severity: 'high',
    description: "one service's Vault token has no TTL and is not renewable",
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('vault-token-no-expiry', c.cloud),
  },
  {
    id: 'vault-token-literal',
    check: 'static-vault-token',
    severity: 'critical',
    description: "a model-sync sidecar in one service's Kubernetes manifest sets VAULT_TOKEN to a literal token",
    inAll: true,
    cloud: false,
    entries: (c) => deployHit(c, 'vault-token-literal'),
  },
  {
    id: 'vault-token-secret-ref',
    check: 'static-vault-token',
    severity: 'high',
    description: "the Vault example Deployment takes VAULT_TOKEN from the Kubernetes Secret vault-token-secret (secretKeyRef), as Aegis's example does",
    inAll: true,
    cloud: false,
    entries: (c) => deployHit(c, 'vault-token-secret-ref'),
  },
  {
    id: 'vault-token-docker-env',
    check: 'static-vault-token',
    severity: 'critical',
    description: "the api Dockerfile bakes a VAULT_TOKEN into the image in a multi-line ENV",
    inAll: true,
    cloud: false,
    entries: (c) => deployHit(c, 'vault-token-docker-env'),
  },
  {
    id: 'vault-token-ci-secret',
    check: 'static-vault-token',
    severity: 'high',
    description: 'the scheduled key-rotation workflow reads VAULT_TOKEN from the long-lived repository secret secrets.VAULT_TOKEN',
    inAll: true,
    cloud: false,
    entries: (c) => deployHit(c, 'vault-token-ci-secret'),
  },
  {
    id: 'model-artifact-unsigned',
    check: 'model-artifact-signature',
    severity: 'critical',
    description: 'one model artifact has no .sig.json',
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('model-artifact-unsigned', c.cloud),
  },
  {
    id: 'model-artifact-error-body',
    check: 'model-artifact-signature',
    severity: 'critical',
    description: "one model artifact's .sig.json is Vault's permission-denied error body, saved by a signer that did not check the response",
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('model-artifact-error-body', c.cloud),
  },
  {
    id: 'model-artifact-wrong-key',
    check: 'model-artifact-signature',
    severity: 'critical',
    description: 'one model artifact was signed with another Transit key (a dev key), so it does not verify under aegis-model-sign',
    inAll: true,
    cloud: true,
    entries: (c) => cloudEntries('model-artifact-wrong-key', c.cloud),
  },
  {
    id: 'auth-mode-none',
    check: 'auth-mode',
    severity: 'critical',
    description: 'one service runs AUTH_MODE=none: no authentication at all',
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'auth-mode', resource: resource({ service: c.identity.noneService }) }],
  },
  {
    id: 'enrolled-list-empty',
    check: 'auth-mode',
    severity: 'critical',
    description: 'the enrolled list in Vault (clients/allowed) is an empty JSON list "[]": mtls services admit every client with a valid certificate',
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => enrolledListEmpty(c),
  },
  {
    id: 'oidc-unbound',
    check: 'auth-mode',
    severity: 'high',
    description: 'the OIDC service behind the gateway endpoint runs without OIDC_AUDIENCE and OIDC_ISSUER: tokens for other audiences and from other issuers are accepted',
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [
      { check: 'auth-mode', resource: resource({ service: c.identity.oidcEndpoint, setting: 'OIDC_AUDIENCE' }) },
      { check: 'auth-mode', resource: resource({ service: c.identity.oidcEndpoint, setting: 'OIDC_ISSUER' }) },
      { check: 'oidc-jwks', resource: resource({ endpoint: c.identity.oidcEndpoint, probe: 'other-audience' }) },
      { check: 'oidc-jwks', resource: resource({ endpoint: c.identity.oidcEndpoint, probe: 'other-issuer' }) },
    ],
  },
  {
    id: 'ingress-accepts-no-cert',
    check: 'mtls-enforced',
    severity: 'high',
    description: 'the mTLS ingress only asks for a client certificate (nginx: ssl_verify_client optional): a client without one reaches the service',
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'mtls-enforced', resource: resource({ endpoint: c.identity.mtlsEndpoint, probe: 'no-cert' }) }],
  },
  {
    id: 'ingress-forwards-forged-header',
    check: 'mtls-enforced',
    severity: 'critical',
    description: "the mTLS ingress lets clients without a certificate through with their own x-ssl-client-cn header, which the service trusts",
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [
      { check: 'mtls-enforced', resource: resource({ endpoint: c.identity.mtlsEndpoint, probe: 'no-cert' }) },
      { check: 'mtls-enforced', resource: resource({ endpoint: c.identity.mtlsEndpoint, probe: 'forged-header' }) },
    ],
  },
  {
    id: 'jwks-private-key',
    check: 'oidc-jwks',
    severity: 'critical',
    description: "the issuer's JWKS publishes its RSA signing key with the private members (d, p, q, ...)",
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'oidc-jwks', resource: resource({ jwks: c.identity.jwksUrl, kid: c.identity.idpKid, rule: 'private' }) }],
  },
  {
    id: 'jwks-hs-key',
    check: 'oidc-jwks',
    severity: 'critical',
    description: "the issuer's JWKS carries a symmetric HS256 key (kty oct with its k)",
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'oidc-jwks', resource: resource({ jwks: c.identity.jwksUrl, kid: c.identity.hsKid, rule: 'symmetric' }) }],
  },
  {
    id: 'oidc-accepts-alg-none',
    check: 'oidc-jwks',
    severity: 'critical',
    description: 'the OIDC service accepts unsigned tokens (alg: none)',
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'oidc-jwks', resource: resource({ endpoint: c.identity.oidcEndpoint, probe: 'alg-none' }) }],
  },
  {
    id: 'oidc-accepts-expired',
    check: 'oidc-jwks',
    severity: 'critical',
    description: 'the OIDC service accepts expired tokens',
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'oidc-jwks', resource: resource({ endpoint: c.identity.oidcEndpoint, probe: 'expired' }) }],
  },
  {
    id: 'cert-expiring',
    check: 'mtls-enforced',
    severity: 'high',
    description: "the mTLS ingress's server certificate expires in 5 days",
    inAll: true,
    cloud: true,
    identity: true,
    entries: (c) => [{ check: 'mtls-enforced', resource: resource({ endpoint: c.identity.mtlsEndpoint, certificate: 'server', rule: 'expiry' }) }],
  },
  {
    id: 'cert-long-lived',
    check: 'mtls-enforced',
    severity: 'medium',
    description: "the auditor's enrolled client certificate is valid for 10 years",
    inAll: true,
    cloud: true,
    identity: true,
    entries: () => [{ check: 'mtls-enforced', resource: resource({ certificate: 'client', rule: 'lifetime' }) }],
  },
  {
    id: 'log-known-secret',
    check: 'secrets-in-logs',
    severity: 'critical',
    description: 'a debug line of the api service dumps INTERNAL_SECRET into its log file',
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'secrets-in-logs', resource: resource({ stream: c.logLeaks.knownSecretStream, detector: 'known-secret', secret: 'INTERNAL_SECRET' }) }],
  },
  {
    id: 'log-secret-shapes',
    check: 'secrets-in-logs',
    severity: 'critical',
    description: "the gateway logs a request's Authorization header (a bearer JWT), an acp_ API key and an AWS access key id (to CloudWatch, or its log file without the cloud side)",
    inAll: true,
    cloud: false,
    entries: (c) =>
      ['jwt', 'acp-api-key', 'aws-access-key-id'].map((detector) => ({ check: 'secrets-in-logs', resource: resource({ stream: c.logLeaks.shapesStream, detector }) })),
  },
  {
    id: 'dev-fallback-secret',
    check: 'dev-fallback-secrets',
    severity: 'critical',
    description: "the api service's AEGIS_MODEL_SIGN_KEY is Aegis's hard-coded development fallback",
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'dev-fallback-secrets', resource: resource({ service: c.modelSignService, secret: 'AEGIS_MODEL_SIGN_KEY', source: 'env_file' }) }],
  },
  {
    id: 'pem-file-left',
    check: 'pem-files-at-rest',
    severity: 'high',
    description: 'a backup of the first receipt key (rotated 160 days ago, now historical) was left beside the PEM fallback path',
    inAll: true,
    cloud: false,
    entries: (c) => [{ check: 'pem-files-at-rest', resource: resource({ path: `${c.pemDir}/receipt-signing.pem.bak` }) }],
  },
  {
    id: 'repo-secret-committed',
    check: 'repo-secret-scan',
    severity: 'critical',
    description: "the deployed INTERNAL_SECRET was pasted into the repository's settings module as a default",
    inAll: true,
    cloud: false,
    entries: () => [{ check: 'repo-secret-scan', resource: resource({ file: repoFile(REPO_FILES.committed), detector: 'known-secret', secret: 'INTERNAL_SECRET' }) }],
  },
  {
    id: 'repo-baseline-unreviewed',
    check: 'repo-secret-scan',
    severity: 'high',
    description: 'a release script gained a Slack webhook URL; the baseline was updated to list it but nobody audited the entry',
    inAll: true,
    cloud: false,
    entries: (c) => [
      { check: 'repo-secret-scan', resource: resource({ file: repoFile(REPO_FILES.unreviewed), detector: 'slack-webhook' }) },
      // Without a baseline there is no entry to be unreviewed.
      ...(c.selected.has('repo-baseline-missing') ? [] : [{ check: 'repo-secret-scan', resource: resource({ file: repoFile(REPO_FILES.unreviewed), baseline: 'unreviewed' }) }]),
    ],
  },
  {
    id: 'repo-baseline-missing',
    check: 'repo-secret-scan',
    severity: 'medium',
    description: 'the repository has no detect-secrets baseline, so its reviewed false positives (a fixture JWT, an example AWS key id) are unreviewed tokens again',
    // It would hide the unreviewed baseline entry.
    inAll: false,
    cloud: false,
    entries: () => [
      { check: 'repo-secret-scan', resource: resource({ baseline: `${REPO_ROOT}:${REPO_BASELINE}` }) },
      { check: 'repo-secret-scan', resource: resource({ file: repoFile(REPO_FILES.fixtureJwt), detector: 'jwt' }) },
      { check: 'repo-secret-scan', resource: resource({ file: repoFile(REPO_FILES.docsAwsKey), detector: 'aws-access-key-id' }) },
    ],
  },
];

const repoFile = (path: string) => `${REPO_ROOT}:${path}`;

/**
 * The findings of the violations the cloud side seeds, from its names alone: the catalog's
 * entries and a standalone cloud sandbox (cloud.ts) both use this, so they cannot disagree.
 * Undefined for a violation the cloud side does not seed.
 */
export function cloudEntries(id: ViolationId, n: CloudNames): ManifestEntry[] {
  switch (id) {
    case 'ssm-literal-secret':
      return [{ check: 'ssm-persisted-secrets', resource: resource({ command: n.literalCommand, parameter: n.literalParameter }) }];
    case 'ssm-insecure-parameter':
      return [{ check: 'ssm-persisted-secrets', resource: resource({ parameter: n.insecureParameter }) }];
    case 'ssm-secret-in-output':
      return [{ check: 'ssm-persisted-secrets', resource: resource({ command: n.outputCommand, instance: n.outputInstance }) }];
    case 'runtime-secret-missing':
      return [{ check: 'runtime-secrets-present', resource: resource({ path: n.runtimeKvPath, field: n.runtimeMissingField }) }];
    case 'vault-root-token':
      return [{ check: 'vault-token-hygiene', resource: resource({ token: n.rootTokenService }) }];
    case 'vault-token-no-expiry':
      // The root token wins when both fall to one service: one finding per token.
      return [{ check: 'vault-token-hygiene', resource: resource({ token: n.noExpiryTokenService }) }];
    case 'auth-failure-burst':
      return [{ check: 'auth-failure-spike', resource: resource({ window: 'current' }) }];
    case 'model-artifact-unsigned':
      return [{ check: 'model-artifact-signature', resource: resource({ artifact: `dir:${n.unsignedArtifact}` }) }];
    case 'model-artifact-error-body':
      return [{ check: 'model-artifact-signature', resource: resource({ artifact: `dir:${n.errorBodyArtifact}` }) }];
    case 'model-artifact-wrong-key':
      return [{ check: 'model-artifact-signature', resource: resource({ artifact: `dir:${n.wrongKeyArtifact}` }) }];
    default:
      return [];
  }
}

export function listViolations(): readonly Violation[] {
  return CATALOG;
}

export function violation(id: ViolationId): Violation {
  const v = CATALOG.find((x) => x.id === id);
  if (!v) throw new Error(`unknown violation ${id}`);
  return v;
}

export function isViolationId(s: string): s is ViolationId {
  return (VIOLATION_IDS as readonly string[]).includes(s);
}

export class UnknownViolationError extends Error {
  constructor(readonly unknown: string[]) {
    const checks = [...new Set(CATALOG.map((v) => v.check))];
    super(
      `unknown violation${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}; ` +
        `known violations: ${VIOLATION_IDS.join(', ')}; or a check id: ${checks.join(', ')}; or "all" / "none"`,
    );
    this.name = 'UnknownViolationError';
  }
}

export interface ResolveOptions {
  /** Whether the cloud side (SSM, CloudWatch Logs, Vault emulators) is there (default true). */
  cloud?: boolean;
}

/**
 * Resolves a selection (`all`, `none`, or violation / check ids) to violation ids in catalog
 * order. Without the cloud side `all` leaves the cloud violations out, and naming one fails.
 */
export function resolveViolations(selection: 'all' | 'none' | readonly string[], opts: ResolveOptions = {}): ViolationId[] {
  const cloud = opts.cloud ?? true;
  const available = (v: Violation) => cloud || !v.cloud;
  if (selection === 'all') return CATALOG.filter((v) => v.inAll && available(v)).map((v) => v.id);
  if (selection === 'none') return [];
  const chosen = new Set<ViolationId>();
  const unknown: string[] = [];
  const needCloud: string[] = [];
  for (const raw of selection) {
    const s = raw.trim();
    if (s === '') continue;
    if (s === 'all') resolveViolations('all', opts).forEach((id) => chosen.add(id));
    else if (s === 'none') continue;
    else if (isViolationId(s)) {
      if (available(violation(s))) chosen.add(s);
      else needCloud.push(s);
    } else {
      const byCheck = CATALOG.filter((v) => v.check === s);
      if (byCheck.length === 0) unknown.push(s);
      else if (!byCheck.some(available)) needCloud.push(s);
      byCheck.filter(available).forEach((v) => chosen.add(v.id));
    }
  }
  if (unknown.length > 0) throw new UnknownViolationError(unknown);
  if (needCloud.length > 0) {
    throw new Error(`${needCloud.map((u) => `"${u}"`).join(', ')} need${needCloud.length > 1 ? '' : 's'} the sandbox's cloud side (SSM, CloudWatch Logs and Vault emulators); build it with cloud enabled`);
  }
  return CATALOG.filter((v) => chosen.has(v.id)).map((v) => v.id);
}

/** The manifest entries of a selection, deduplicated and sorted (check, then resource). */
export function manifestEntries(ctx: ManifestContext): ManifestEntry[] {
  const all = CATALOG.filter((v) => ctx.selected.has(v.id)).flatMap((v) => v.entries(ctx));
  const seen = new Map<string, ManifestEntry>();
  for (const e of all) seen.set(`${e.check}\n${e.resource}`, e);
  return [...seen.values()].sort((a, b) => (a.check === b.check ? (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0) : a.check < b.check ? -1 : 1));
}
