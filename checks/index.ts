/**
 * The registry: every built-in check, explicitly, alphabetised. A meta-test asserts that
 * the files in this folder, this list, the runbooks and the alert rules agree.
 */
import type { AnyCheck } from '../src/core/define-check';
import { buildRegistry } from '../src/core/registry';
import authFailureSpike from './auth-failure-spike';
import authMode from './auth-mode';
import credentialAge from './credential-age';
import devFallbackSecrets from './dev-fallback-secrets';
import historicalKeys from './historical-keys';
import internalSecretDrift from './internal-secret-drift';
import modelArtifactSignature from './model-artifact-signature';
import mtlsEnforced from './mtls-enforced';
import oidcJwks from './oidc-jwks';
import pemFilesAtRest from './pem-files-at-rest';
import receiptChain from './receipt-chain';
import repoSecretScan from './repo-secret-scan';
import runtimeSecretsPresent from './runtime-secrets-present';
import secretsInLogs from './secrets-in-logs';
import signingKeyFingerprint from './signing-key-fingerprint';
import signingKeySource from './signing-key-source';
import ssmPersistedSecrets from './ssm-persisted-secrets';
import staticVaultToken from './static-vault-token';
import vaultTokenHygiene from './vault-token-hygiene';

export const builtinChecks: readonly AnyCheck[] = [
  authFailureSpike,
  authMode,
  credentialAge,
  devFallbackSecrets,
  historicalKeys,
  internalSecretDrift,
  modelArtifactSignature,
  mtlsEnforced,
  oidcJwks,
  pemFilesAtRest,
  receiptChain,
  repoSecretScan,
  runtimeSecretsPresent,
  secretsInLogs,
  signingKeyFingerprint,
  signingKeySource,
  ssmPersistedSecrets,
  staticVaultToken,
  vaultTokenHygiene,
];

export const registry = buildRegistry(builtinChecks);
