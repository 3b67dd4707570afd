/**
 * Aegis's code falls back to hard-coded development secrets when a setting is missing: the
 * JWT secret to `dev-secret-key-change-me`, the model signing key to
 * `dev-model-sign-key-change-me`, and its compose files ship more (*Secrets and Supply-chain
 * Guidance for Aegis*: "Avoid long-lived static credentials"; *Secret Management*, Class 1).
 * Anyone who has read that code can mint tokens or sign models for a deployment running on
 * one. This check compares every secret the auditor can read (env files, SSM, Vault, and the
 * Vault paths Aegis's code reads its JWT and model signing keys from) with a list of known
 * development fallbacks — Aegis's built in, more from config — by keyed fingerprint.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import type { SecretHolder } from '../src/core/sources';
import { Secret } from '../src/core/secret';
import { untrusted } from '../src/core/untrusted';

interface Fallback {
  /** What findings call it: never the value (it is the deployment's secret once in use). */
  label: string;
  value: string;
  /** Only secrets with such names are compared (generic passwords would match unrelated settings). */
  names?: RegExp;
}

const PASSWORDS = /PASSW|PWD|_URL$|^URL$/i;

/** Aegis's own development fallbacks and its compose files' credentials. Public strings. */
export const BUILTIN_FALLBACKS: readonly Fallback[] = Object.freeze([
  { label: "Aegis's hard-coded JWT secret fallback", value: 'dev-secret-key-change-me' },
  { label: "Aegis's hard-coded fallback for its model signing key", value: 'dev-model-sign-key-change-me' },
  { label: "the secret key of Aegis's integration compose file", value: 'test-secret-key' },
  { label: "the model signing key of Aegis's integration compose file", value: 'test-model-sign-key' },
  { label: "the MinIO password of Aegis's compose files", value: 'minioadmin', names: PASSWORDS },
  { label: "the MLflow database password of Aegis's compose files", value: 'mlflowpass', names: PASSWORDS },
  { label: "a default password of Aegis's compose files", value: 'password', names: PASSWORDS },
  { label: "a default password of Aegis's compose files", value: 'postgres', names: PASSWORDS },
  { label: "the Grafana admin password of Aegis's compose files", value: 'admin', names: PASSWORDS },
]);

export default defineCheck({
  meta: {
    id: 'dev-fallback-secrets',
    title: 'No service runs on a known development fallback secret',
    description:
      "Compares every secret the auditor can read — env files, SSM, Vault, and the Vault paths Aegis reads its JWT and model signing keys from — with Aegis's hard-coded development fallbacks and its compose files' credentials (and any configured), by keyed fingerprint. A pass proves no service's JWT secret, model signing key or other secret is one anybody can read in Aegis's source.",
    severity: 'critical',
    sources: ['secrets'],
    schedule: '*/30 * * * *',
    // A publicly known development secret in use is a leak from the first run that finds it.
    pagesOnFirstFailure: true,
    checklist: ['no-plaintext-secrets'],
    runbook: 'docs/runbooks/dev-fallback-secrets.md',
    remediation:
      'Generate a strong random value, set it where the service reads it (the SSM deploy parameters, or Vault), restart the service, and treat everything signed with the fallback as forgeable (rotate as for a leak).',
  },
  messages: {
    fallback: "Service {{service}}'s {{secret}} ({{origin}}) is {{fallback}}: anyone who has read that code knows it.",
  },
  options: z.object({
    /** More development fallbacks to refuse: a label for findings, and the value. */
    fallbacks: z.array(z.object({ label: z.string().min(1), value: z.string().min(1) }).strict()).default([]),
    /** Include Aegis's built-in list (above). */
    builtin: z.boolean().default(true),
    /** Vault KV paths (under the kv mount) Aegis's code reads secrets from, beyond the services' own. */
    vault_paths: z
      .array(z.object({ path: z.string().min(1), field: z.string().min(1), service: z.string().min(1).default('api') }).strict())
      .default([
        { path: 'aegis/secrets/jwt', field: 'SECRET_KEY', service: 'api' },
        { path: 'aegis/keys/model_sign', field: 'MODEL_SIGN_KEY', service: 'api' },
      ]),
  }),
  async run(ctx) {
    const secrets = ctx.source('secrets');
    const fallbacks: Fallback[] = [...(ctx.options.builtin ? BUILTIN_FALLBACKS : []), ...ctx.options.fallbacks];
    const byFingerprint = new Map<string, Fallback[]>();
    for (const f of fallbacks) {
      const fp = ctx.fingerprinter.fingerprint(f.value);
      const list = byFingerprint.get(fp) ?? [];
      list.push(f);
      byFingerprint.set(fp, list);
    }

    const holders: SecretHolder[] = [...(await secrets.all())];
    const vault = ctx.sources.vault;
    if (vault) {
      for (const { path, field, service } of ctx.options.vault_paths) {
        const data = await vault.readKv(path);
        const v = data?.[field];
        if (v && v.length > 0) holders.push({ service, name: field, provider: 'vault', origin: `vault:${vault.kvMount}/data/${path}#${field}`, value: v });
      }
    }

    let compared = 0;
    for (const h of holders) {
      compared++;
      const raw = h.value.reveal();
      const candidates = byFingerprint.get(ctx.fingerprinter.fingerprint(raw.trim() === raw ? h.value : new Secret(raw.trim())));
      const hit = candidates?.find((f) => !f.names || f.names.test(h.name));
      if (!hit) continue;
      ctx.report({
        messageId: 'fallback',
        data: { service: untrusted.text(h.service, 64), secret: untrusted.text(h.name, 80), origin: untrusted.text(h.origin, 160), fallback: hit.label },
        resource: resource({ service: untrusted.id(h.service), secret: untrusted.id(h.name), source: h.provider }),
        evidence: { service: untrusted.text(h.service, 120), secret: untrusted.text(h.name, 120), provider: h.provider, origin: untrusted.text(h.origin, 240), fallback: hit.label },
        severity: hit.names ? 'high' : 'critical',
      });
    }
    ctx.measure('dev_fallback_secrets_compared', compared, 'Secrets compared with the known development fallbacks');
  },
});
