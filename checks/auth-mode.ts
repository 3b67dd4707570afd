/**
 * Every service must run a strong auth mode (*Runbook: Enforce Vault-backed secrets and
 * OIDC/mTLS auth end-to-end* §2 "Configure AUTH_MODE", §8 "Enrollment list present in secret
 * backend for mtls mode"). Aegis reads AUTH_MODE from its environment, lowercased, defaulting
 * to `none` — no authentication at all; in mtls mode an empty enrolled list admits every
 * client; in oidc mode audience and issuer are checked only when set.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import type { SecretHolder } from '../src/core/sources';

const MODES = ['none', 'oidc', 'mtls'] as const;

/** Aegis' get_enrollment_allowed_list: a JSON list, else comma- or newline-separated names. */
export function parseEnrolledList(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  } catch {
    // not JSON: a plain list
  }
  return raw
    .replace(/,/g, '\n')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export default defineCheck({
  meta: {
    id: 'auth-mode',
    title: 'Every service runs AUTH_MODE oidc or mtls, fully configured',
    description:
      "Reads each service's AUTH_MODE where the deployment keeps it (env files, SSM, Vault). A pass proves no service runs without authentication (none, or unset, which Aegis treats as none), mtls services have a non-empty enrolled list (an empty one admits every client), and oidc services check audience and issuer and can find their JWKS.",
    severity: 'critical',
    sources: ['secrets', 'vault'],
    schedule: '*/15 * * * *',
    checklist: ['strong-auth-enforced'],
    runbook: 'docs/runbooks/auth-mode.md',
    remediation:
      'Set AUTH_MODE=oidc (external) or AUTH_MODE=mtls (internal) for every service; for mtls keep the enrolled list (clients/allowed) non-empty in Vault; for oidc set OIDC_AUDIENCE, OIDC_ISSUER and OIDC_JWKS_URI.',
  },
  messages: {
    modeNone: 'Service {{service}} runs AUTH_MODE=none ({{origin}}): it authenticates no request.',
    modeUnset: 'Service {{service}} has no AUTH_MODE in {{where}}: Aegis then runs with none and authenticates no request.',
    modeInvalid: 'Service {{service}} has an AUTH_MODE Aegis does not know ({{length}} characters, {{origin}}): every request answers 500 "Auth misconfigured".',
    modeWeak: 'Service {{service}} runs AUTH_MODE={{mode}} ({{origin}}), which this deployment does not allow (allowed: {{allowed}}).',
    enrolledEmpty: 'The enrolled client list ({{path}} field {{field}}) is {{state}}, and {{services}} run{{s}} AUTH_MODE=mtls: Aegis then admits every client.',
    oidcSettingMissing: 'Service {{service}} runs AUTH_MODE=oidc without {{setting}}: {{consequence}}',
  },
  options: z.object({
    /** Services to judge; default: every service of the deployment. */
    services: z.array(z.string().min(1)).optional(),
    /** The modes a service may run. */
    allowed: z.array(z.enum(['oidc', 'mtls'])).min(1).default(['oidc', 'mtls']),
    /** KV path of the enrolled list (default: the Vault source's runtime_path) and its field. */
    enrolledPath: z.string().min(1).optional(),
    enrolledField: z.string().min(1).default('clients/allowed'),
    /** The runtime-secret field an oidc service may take its JWKS URI from when OIDC_JWKS_URI is unset. */
    jwksField: z.string().min(1).default('oidc_jwks_uri'),
  }),
  async run(ctx) {
    const store = ctx.source('secrets');
    const vault = ctx.source('vault');
    const o = ctx.options;
    const services = o.services ?? [...ctx.services];
    const [modes, audiences, issuers, jwks] = await Promise.all(['AUTH_MODE', 'OIDC_AUDIENCE', 'OIDC_ISSUER', 'OIDC_JWKS_URI'].map((n) => store.holders(n)));
    const trim = (p: string) => p.replace(/^\/+|\/+$/g, '');
    const runtimePath = trim(vault.runtimePath ?? 'aegis/runtime');
    const enrolledPath = trim(o.enrolledPath ?? runtimePath);
    const kvPath = `${vault.kvMount}/data/${enrolledPath}`;
    const runtime = await vault.readKv(runtimePath);
    const enrolledSecret = enrolledPath === runtimePath ? runtime : await vault.readKv(enrolledPath);
    const where = store.providers().join(', ') || 'no configured provider';
    const has = (holders: SecretHolder[], service: string) => holders.some((h) => h.service === service && h.value.reveal().trim() !== '');

    const mtls: string[] = [];
    for (const service of services) {
      const mine = modes.filter((h) => h.service === service);
      if (mine.length === 0) {
        ctx.report({ messageId: 'modeUnset', data: { service, where }, resource: resource({ service }), evidence: { service, providers: store.providers() } });
        continue;
      }
      // The value is never echoed: a secret put in the wrong variable would be. Where holders disagree, the weakest one decides: any of them may be what a restart loads.
      const read = mine.map((h) => ({ h, mode: h.value.reveal().trim().toLowerCase() }));
      const none = read.find((r) => r.mode === 'none' || r.mode === '');
      const invalid = read.find((r) => !(MODES as readonly string[]).includes(r.mode));
      const weak = read.find((r) => (r.mode === 'oidc' || r.mode === 'mtls') && !o.allowed.includes(r.mode));
      const evidence = { service, modes: read.map((r) => ({ origin: r.h.origin, mode: (MODES as readonly string[]).includes(r.mode) ? r.mode : '(unrecognised)' })) };
      if (none) {
        ctx.report({ messageId: 'modeNone', data: { service, origin: none.h.origin }, resource: resource({ service }), evidence });
        continue;
      }
      if (invalid) {
        ctx.report({ messageId: 'modeInvalid', data: { service, length: invalid.h.value.length, origin: invalid.h.origin }, resource: resource({ service }), evidence, severity: 'high' });
        continue;
      }
      if (weak) {
        ctx.report({ messageId: 'modeWeak', data: { service, mode: weak.mode, origin: weak.h.origin, allowed: o.allowed.join(', ') }, resource: resource({ service }), evidence, severity: 'high' });
        continue;
      }
      if (read.some((r) => r.mode === 'mtls')) mtls.push(service);
      if (read.some((r) => r.mode === 'oidc')) {
        const missing = (setting: string, consequence: string) =>
          ctx.report({ messageId: 'oidcSettingMissing', data: { service, setting, consequence }, resource: resource({ service, setting }), evidence: { service, setting }, severity: 'high' });
        if (!has(audiences, service)) missing('OIDC_AUDIENCE', 'tokens issued for any other audience are accepted.');
        if (!has(issuers, service)) missing('OIDC_ISSUER', 'tokens from any issuer whose key is in the set are accepted.');
        if (!has(jwks, service) && !(runtime?.[o.jwksField] && runtime[o.jwksField].reveal().trim() !== '')) {
          missing('OIDC_JWKS_URI', `no JWKS URI in its env nor ${o.jwksField} in ${vault.kvMount}/data/${runtimePath}: every request answers 500 "OIDC not configured".`);
        }
      }
    }

    if (mtls.length > 0) {
      const raw = enrolledSecret?.[o.enrolledField]?.reveal();
      const list = parseEnrolledList(raw);
      if (list.length === 0) {
        const state = !enrolledSecret ? 'absent (the secret does not exist)' : raw === undefined ? 'absent' : 'empty';
        ctx.report({
          messageId: 'enrolledEmpty',
          data: { path: kvPath, field: o.enrolledField, state, services: mtls.join(', '), s: mtls.length === 1 ? 's' : '' },
          resource: resource({ path: kvPath, field: o.enrolledField }),
          evidence: { path: kvPath, field: o.enrolledField, secretExists: enrolledSecret !== undefined, fieldPresent: raw !== undefined, mtlsServices: mtls },
        });
      }
      ctx.measure('auth_mode_enrolled_clients', list.length, 'Clients in the enrolled list mtls services admit');
    }
    ctx.measure('auth_mode_services', services.length, 'Services whose AUTH_MODE was judged');
  },
});
