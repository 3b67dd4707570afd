/**
 * A root token, or one that never expires, is a standing credential: leaked once, valid
 * forever. *Runbook: Secrets & Identity for Aegis* ("Security notes") and
 * *Secrets and Supply-chain Guidance for Aegis* §3 ask for short-lived, renewable tokens (Vault Agent, k8s auth).
 * This check looks up the auditor's own token and the services' tokens by accessor; it never
 * sees the services' tokens themselves.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { configError } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { VaultTokenInfo } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';

/** Vault's token types; anything else is shown only by its length. */
const TOKEN_TYPES = ['service', 'batch'] as const;
/** Policies listed in evidence at most (a token with more says how many). */
const MAX_POLICIES_SHOWN = 20;

type Problem = 'root' | 'noExpiry' | 'notRenewable';

function problemsOf(t: VaultTokenInfo): Problem[] {
  const out: Problem[] = [];
  if (t.policies.includes('root') || t.path === 'auth/token/root') out.push('root');
  if (!(t.ttl > 0) && t.expireTime === null) out.push('noExpiry');
  if (!t.renewable) out.push('notRenewable');
  return out;
}

const TEXT: Record<Problem, string> = {
  root: 'is a root token',
  noExpiry: 'never expires',
  notRenewable: 'is not renewable',
};

export default defineCheck({
  meta: {
    id: 'vault-token-hygiene',
    title: 'Vault tokens in use are not root, expire and are renewable',
    description:
      "The auditor's own Vault token and every configured service token (looked up by accessor) are non-root, carry a TTL and are renewable. Root or non-expiring tokens are standing credentials that outlive any leak.",
    severity: 'high',
    sources: ['vault'],
    schedule: '0 * * * *',
    checklist: ['secret-manager-configured'],
    runbook: 'docs/runbooks/vault-token-hygiene.md',
    remediation:
      'Replace the token with one from an auth method (Kubernetes, AppRole, Vault Agent) with a bounded TTL and renewal, then revoke the old one (vault token revoke -accessor <accessor>).',
  },
  messages: {
    root: 'Vault token {{token}} is a root token{{more}}.',
    noExpiry: 'Vault token {{token}} never expires (no TTL){{more}}.',
    notRenewable: 'Vault token {{token}} is not renewable{{more}}.',
  },
  options: z.object({
    /** Extra tokens to inspect, name → accessor, besides the Vault source's `token_accessors`. */
    token_accessors: z.record(z.string().min(1), z.string().min(1)).default({}),
    /** Also inspect the auditor's own token. */
    self: z.boolean().default(true),
  }),
  async run(ctx) {
    const vault = ctx.source('vault');
    const tokens: { label: string; lookup: () => Promise<VaultTokenInfo> }[] = [];
    if (ctx.options.self) tokens.push({ label: 'self', lookup: () => vault.lookupSelf() });
    const accessors = { ...(vault.tokenAccessors ?? {}), ...ctx.options.token_accessors };
    for (const [name, accessor] of Object.entries(accessors).sort(([a], [b]) => a.localeCompare(b))) {
      tokens.push({ label: name, lookup: () => vault.lookupAccessor(accessor) });
    }
    if (tokens.length === 0) {
      // Nothing inspected is not a pass.
      throw configError(
        'no Vault token to inspect: options.self is false and no service token is configured (sources.vault.token_accessors or checks.vault-token-hygiene.options.token_accessors)',
      );
    }
    for (const t of tokens) {
      const info = await t.lookup();
      const problems = problemsOf(info);
      if (problems.length === 0) continue;
      // One finding per token (its resource is the token); the first problem names it, the rest follow.
      const [first, ...rest] = problems;
      ctx.report({
        messageId: first,
        data: { token: t.label, more: rest.length ? `; it also ${rest.map((p) => TEXT[p]).join(' and ')}` : '' },
        resource: resource({ token: t.label }),
        evidence: {
          token: t.label,
          // What Vault answered is the deployment's text: through the gate, like log fields.
          accessor: info.accessor === undefined ? null : untrusted.text(info.accessor, 64),
          problems,
          policies: info.policies.slice(0, MAX_POLICIES_SHOWN).map((p) => untrusted.text(p, 64)),
          ...(info.policies.length > MAX_POLICIES_SHOWN ? { policyCount: info.policies.length } : {}),
          path: info.path === undefined ? null : untrusted.text(info.path, 128),
          ttlSeconds: info.ttl,
          expireTime: info.expireTime?.toISOString() ?? null,
          renewable: info.renewable,
          type: info.type === undefined ? null : untrusted.oneOf(info.type, TOKEN_TYPES),
        },
      });
    }
  },
});
