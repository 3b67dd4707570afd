/**
 * The pre-pilot checklist, from the Aegis runbooks: *Runbook: Secrets & Identity for Aegis*
 * §10 "Checklist before pilot", *Runbook: Enforce Vault-backed secrets and OIDC/mTLS auth
 * end-to-end* §8, and *Secret Management* "What to audit when reviewing a deployment". Each item is evidenced by checks, by a manual attestation where
 * no check can prove it, or both. An item passes only when all its checks pass (or its
 * attestation is present and unexpired). Where a check can evidence what the attestation
 * states (`attestationEvidencedBy`), the attestation is needed only when that check did not
 * run (not configured, so skipped; disabled or not selected): once it ran, the item is judged
 * by its checks alone. Checks name the items they evidence in
 * `meta.checklist`; a meta-test keeps the two in step.
 */
/**
 * The Aegis runbooks, by the titles a user finds them under. Every user-facing citation
 * (checklist `source`, runbooks in docs/, check text) names one of these and a section —
 * never a file name (a test keeps it so).
 */
export const AEGIS_RUNBOOKS = Object.freeze({
  secretManagement: 'Secret Management',
  secretsAndIdentity: 'Runbook: Secrets & Identity for Aegis',
  enforceVaultOidcMtls: 'Runbook: Enforce Vault-backed secrets and OIDC/mTLS auth end-to-end',
  secretsAndSupplyChain: 'Secrets and Supply-chain Guidance for Aegis',
  vaultTransitSigning: 'Vault Transit signing (Aegis)',
} as const);

const IDENTITY_10 = `${AEGIS_RUNBOOKS.secretsAndIdentity}, §10 "Checklist before pilot"`;
const ENFORCE_8 = `${AEGIS_RUNBOOKS.enforceVaultOidcMtls}, §8 "Minimal checklist before enabling in production"`;
const toAudit = (n: number) => `${AEGIS_RUNBOOKS.secretManagement}, "What to audit when reviewing a deployment" ${n}`;

export interface ChecklistItem {
  id: string;
  title: string;
  /** Checks whose results evidence the item. */
  checks: readonly string[];
  /** What a human must attest to, where no check can prove it. */
  attestation?: string;
  /**
   * Checks (also in `checks`) that evidence the attestation itself. When every one of them ran
   * (pass or fail), the item needs no attestation; when one was skipped or not part of the run,
   * the attestation is required in its place. An erroring one leaves the item not evaluated.
   */
  attestationEvidencedBy?: readonly string[];
  /** Where the item comes from: an Aegis runbook title (AEGIS_RUNBOOKS) and section. */
  source: string;
}

export const CHECKLIST: readonly ChecklistItem[] = Object.freeze([
  {
    id: 'secret-manager-configured',
    title: 'Secret manager configured and readable by the runtime',
    checks: ['runtime-secrets-present', 'vault-token-hygiene'],
    source: `${IDENTITY_10}; ${ENFORCE_8}`,
  },
  {
    id: 'no-plaintext-secrets',
    title: 'No production secrets in repo or plain environment / command history',
    checks: ['ssm-persisted-secrets', 'secrets-in-logs', 'static-vault-token', 'dev-fallback-secrets', 'pem-files-at-rest', 'repo-secret-scan'],
    attestation: 'Repository secret scan (detect-secrets baseline reviewed) is clean',
    attestationEvidencedBy: ['repo-secret-scan'],
    source: `${IDENTITY_10}; ${AEGIS_RUNBOOKS.secretsAndSupplyChain}, §4 "Pre-commit & local scanning"`,
  },
  {
    id: 'strong-auth-enforced',
    title: 'At least one strong auth method enforced (mTLS internal, OIDC external)',
    checks: ['auth-mode', 'mtls-enforced', 'oidc-jwks'],
    source: `${IDENTITY_10}; ${ENFORCE_8}`,
  },
  {
    id: 'per-client-credentials',
    title: 'Per-client credentials and enrollment list present',
    checks: ['runtime-secrets-present'],
    attestation: 'Enrollment procedure is documented and followed',
    source: `${IDENTITY_10}; ${ENFORCE_8}`,
  },
  {
    id: 'rotation-procedures-tested',
    title: 'Rotation procedures tested, runbook available',
    checks: ['credential-age', 'historical-keys'],
    attestation: 'Rotation runbook is available to SRE/security and was rehearsed',
    source: IDENTITY_10,
  },
  {
    id: 'class1-secrets-from-env',
    title: 'Class-1 secrets loaded from env, not the fallback path',
    checks: ['signing-key-source'],
    source: toAudit(1),
  },
  {
    id: 'receipt-key-matches-rows',
    title: 'Receipt signing key matches recent audit rows',
    checks: ['signing-key-fingerprint', 'receipt-chain'],
    source: toAudit(2),
  },
  {
    id: 'historical-keys-recorded',
    title: 'Historical keys recorded after rotation',
    checks: ['historical-keys'],
    source: toAudit(3),
  },
  {
    id: 'internal-secret-identical',
    title: 'INTERNAL_SECRET identical across services',
    checks: ['internal-secret-drift'],
    source: toAudit(4),
  },
  {
    id: 'deploy-params-not-persisted',
    title: 'Deploy parameters not persisted',
    checks: ['ssm-persisted-secrets'],
    source: toAudit(5),
  },
  {
    id: 'auth-failure-alerting',
    title: 'Alerting on auth failures and missing secrets',
    checks: ['auth-failure-spike'],
    attestation: 'The aegis-audit alert rules are loaded in Prometheus and route to a receiver',
    source: `${AEGIS_RUNBOOKS.secretsAndIdentity}, §7 "Audit & monitoring"; ${AEGIS_RUNBOOKS.enforceVaultOidcMtls}, §5 "Fail-fast & monitoring"`,
  },
  {
    id: 'model-artifacts-signed',
    title: 'Model artifacts signed, and verified before load',
    checks: ['model-artifact-signature'],
    source: 'Vault Transit signing (Aegis), "Runtime integration"',
  },
]);

export const CHECKLIST_IDS: ReadonlySet<string> = new Set(CHECKLIST.map((i) => i.id));
