/**
 * The services refuse to start without their runtime secrets (RuntimeSecrets.ensure_required
 * in *Runbook: Enforce Vault-backed secrets and OIDC/mTLS auth
 * end-to-end* §2); this check finds a missing or emptied field before a restart does. It reads
 * the KV v2 secret the runtime reads, through the auditor's own Vault token.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';

export default defineCheck({
  meta: {
    id: 'runtime-secrets-present',
    title: 'Required runtime secrets are present in Vault',
    description:
      'The runtime secret (secret/data/aegis/runtime) holds a non-empty value for every required field: the OIDC JWKS URI, the model signing public key and the allowed-clients list. Without them the services fail ensure_required at start, or run without client enrollment.',
    severity: 'critical',
    sources: ['vault'],
    schedule: '*/15 * * * *',
    checklist: ['secret-manager-configured', 'per-client-credentials'],
    runbook: 'docs/runbooks/runtime-secrets-present.md',
    remediation: 'Write the missing fields to the runtime secret in Vault (vault kv patch secret/aegis/runtime <field>=...) and confirm the services pass ensure_required.',
  },
  messages: {
    missing: 'Runtime secret field {{field}} is {{state}} at {{path}}.',
  },
  options: z.object({
    /** Fields the runtime requires (RuntimeSecrets.ensure_required). */
    required: z.array(z.string().min(1)).min(1).default(['oidc_jwks_uri', 'model_signing_pubkey', 'clients/allowed']),
    /** KV path under the mount; default: the Vault source's `runtime_path`. */
    path: z.string().min(1).optional(),
  }),
  async run(ctx) {
    const vault = ctx.source('vault');
    const path = (ctx.options.path ?? vault.runtimePath ?? 'aegis/runtime').replace(/^\/+|\/+$/g, '');
    const kvPath = `${vault.kvMount}/data/${path}`;
    const fields = await vault.readKv(path);
    for (const field of ctx.options.required) {
      const v = fields?.[field];
      if (v && v.length > 0) continue;
      const state = !fields ? 'absent (the secret does not exist)' : v ? 'empty' : 'absent';
      ctx.report({
        messageId: 'missing',
        data: { field, state, path: kvPath },
        resource: resource({ path: kvPath, field }),
        evidence: { path: kvPath, field, secretExists: fields !== undefined, fieldPresent: v !== undefined },
      });
    }
  },
});
