# Vault policy for the aegis-audit auditor: read-only on the KV v2 paths it compares, and
# its own token's lookup. Adjust the mount ("secret") and prefix ("aegis") to match
# sources.secrets.vault.kv_mount / path_prefix / runtime_path in audit.yaml.
#   vault policy write aegis-audit docs/deploy/vault-policy.hcl

# Per-service secrets (INTERNAL_SECRET, JWT_SECRET_KEY, signing keys) and runtime secrets.
path "secret/data/aegis/*" {
  capabilities = ["read"]
}

# The auditor's own token: vault-token-hygiene checks it is not root, expires and renews.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Service tokens named by accessor in sources.secrets.vault.token_accessors (metadata only;
# a lookup by accessor never returns the token). Drop this block if none are configured.
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

# model-artifact-signature: read the Transit key (type, exportable) and verify signatures.
# Adjust the mount ("transit") and key names to the check's options (mount, keys).
path "transit/keys/aegis-model-sign" {
  capabilities = ["read"]
}
path "transit/verify/aegis-model-sign" {
  capabilities = ["update"]
}
