/**
 * Each built-in check's module, loaded when the check is first used, so that a command running
 * one check (`run --checks receipt-chain`, a cron job's or a CI gate's) does not load the other
 * checks and what they import. Keyed by check id, which is each module's file name; the list is
 * the registry's (checks/index.ts), and a test holds the two to each other.
 */
import type { AnyCheck } from '../src/core/define-check';

/* eslint-disable @typescript-eslint/no-require-imports */
export const checkLoaders: Readonly<Record<string, () => AnyCheck>> = Object.freeze({
  'auth-failure-spike': () => (require('./auth-failure-spike') as { default: AnyCheck }).default,
  'auth-mode': () => (require('./auth-mode') as { default: AnyCheck }).default,
  'credential-age': () => (require('./credential-age') as { default: AnyCheck }).default,
  'dev-fallback-secrets': () => (require('./dev-fallback-secrets') as { default: AnyCheck }).default,
  'historical-keys': () => (require('./historical-keys') as { default: AnyCheck }).default,
  'internal-secret-drift': () => (require('./internal-secret-drift') as { default: AnyCheck }).default,
  'model-artifact-signature': () => (require('./model-artifact-signature') as { default: AnyCheck }).default,
  'mtls-enforced': () => (require('./mtls-enforced') as { default: AnyCheck }).default,
  'oidc-jwks': () => (require('./oidc-jwks') as { default: AnyCheck }).default,
  'pem-files-at-rest': () => (require('./pem-files-at-rest') as { default: AnyCheck }).default,
  'receipt-chain': () => (require('./receipt-chain') as { default: AnyCheck }).default,
  'repo-secret-scan': () => (require('./repo-secret-scan') as { default: AnyCheck }).default,
  'runtime-secrets-present': () => (require('./runtime-secrets-present') as { default: AnyCheck }).default,
  'secrets-in-logs': () => (require('./secrets-in-logs') as { default: AnyCheck }).default,
  'signing-key-fingerprint': () => (require('./signing-key-fingerprint') as { default: AnyCheck }).default,
  'signing-key-source': () => (require('./signing-key-source') as { default: AnyCheck }).default,
  'ssm-persisted-secrets': () => (require('./ssm-persisted-secrets') as { default: AnyCheck }).default,
  'static-vault-token': () => (require('./static-vault-token') as { default: AnyCheck }).default,
  'vault-token-hygiene': () => (require('./vault-token-hygiene') as { default: AnyCheck }).default,
});
/* eslint-enable @typescript-eslint/no-require-imports */
