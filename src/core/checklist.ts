/**
 * The pre-pilot checklist (runbooks: seeds 000 §10, 001 §8, 004 "What to audit when
 * reviewing a deployment"). Each item is evidenced by checks, by a manual attestation where
 * no check can prove it, or both. An item passes only when all its checks pass (or its
 * attestation is present and unexpired). Checks name the items they evidence in
 * `meta.checklist`; a meta-test keeps the two in step.
 */
export interface ChecklistItem {
  id: string;
  title: string;
  /** Checks whose results evidence the item. */
  checks: readonly string[];
  /** What a human must attest to, where no check can prove it. */
  attestation?: string;
  source: string;
}

export const CHECKLIST: readonly ChecklistItem[] = Object.freeze([
  {
    id: 'secret-manager-configured',
    title: 'Secret manager configured and readable by the runtime',
    checks: ['runtime-secrets-present', 'vault-token-hygiene'],
    source: 'seed 000 §10; seed 001 §8',
  },
  {
    id: 'no-plaintext-secrets',
    title: 'No production secrets in repo or plain environment / command history',
    checks: ['ssm-persisted-secrets', 'secrets-in-logs', 'static-vault-token', 'dev-fallback-secrets', 'pem-files-at-rest'],
    attestation: 'Repository secret scan (detect-secrets baseline reviewed) is clean',
    source: 'seed 000 §10; seed 002 §4',
  },
  {
    id: 'strong-auth-enforced',
    title: 'At least one strong auth method enforced (mTLS internal, OIDC external)',
    checks: ['auth-mode', 'mtls-enforced', 'oidc-jwks'],
    source: 'seed 000 §10; seed 001 §8',
  },
  {
    id: 'per-client-credentials',
    title: 'Per-client credentials and enrollment list present',
    checks: ['runtime-secrets-present'],
    attestation: 'Enrollment procedure is documented and followed',
    source: 'seed 000 §10; seed 001 §8',
  },
  {
    id: 'rotation-procedures-tested',
    title: 'Rotation procedures tested, runbook available',
    checks: ['credential-age', 'historical-keys'],
    attestation: 'Rotation runbook is available to SRE/security and was rehearsed',
    source: 'seed 000 §10',
  },
  {
    id: 'class1-secrets-from-env',
    title: 'Class-1 secrets loaded from env, not the fallback path',
    checks: ['signing-key-source'],
    source: 'seed 004, what to audit 1',
  },
  {
    id: 'receipt-key-matches-rows',
    title: 'Receipt signing key matches recent audit rows',
    checks: ['signing-key-fingerprint', 'receipt-chain'],
    source: 'seed 004, what to audit 2',
  },
  {
    id: 'historical-keys-recorded',
    title: 'Historical keys recorded after rotation',
    checks: ['historical-keys'],
    source: 'seed 004, what to audit 3',
  },
  {
    id: 'internal-secret-identical',
    title: 'INTERNAL_SECRET identical across services',
    checks: ['internal-secret-drift'],
    source: 'seed 004, what to audit 4',
  },
  {
    id: 'deploy-params-not-persisted',
    title: 'Deploy parameters not persisted',
    checks: ['ssm-persisted-secrets'],
    source: 'seed 004, what to audit 5',
  },
  {
    id: 'auth-failure-alerting',
    title: 'Alerting on auth failures and missing secrets',
    checks: ['auth-failure-spike'],
    attestation: 'The aegis-audit alert rules are loaded in Prometheus and route to a receiver',
    source: 'seed 000 §7; seed 001 §5',
  },
  {
    id: 'model-artifacts-signed',
    title: 'Model artifacts signed, and verified before load',
    checks: ['model-artifact-signature'],
    source: 'Vault Transit signing (Aegis), "Runtime integration"',
  },
]);

export const CHECKLIST_IDS: ReadonlySet<string> = new Set(CHECKLIST.map((i) => i.id));
