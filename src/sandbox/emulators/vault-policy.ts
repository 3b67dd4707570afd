/**
 * A small subset of Vault ACL policies: a policy maps path patterns (exact, or a glob with a
 * trailing `*`) to capabilities. Among the rules of all of a token's policies the most specific
 * pattern wins (exact before glob, longer glob before shorter), capabilities of equal patterns
 * are merged, and `deny` beats everything, as in Vault.
 */

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny';

/** `{ 'secret/data/aegis/*': ['read'], 'secret/metadata/*': ['list'] }` */
export type PolicyRules = Readonly<Record<string, readonly Capability[]>>;

/** Vault's built-in `default` policy, reduced to the token self-service paths. */
export const DEFAULT_POLICY: PolicyRules = {
  'auth/token/lookup-self': ['read'],
  'auth/token/renew-self': ['update'],
  'auth/token/revoke-self': ['update'],
  'sys/capabilities-self': ['update'],
};

/** Specificity of `pattern` for `path`, or -1 when it does not apply. */
function specificity(pattern: string, path: string): number {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return path.startsWith(prefix) ? prefix.length : -1;
  }
  // An exact match outranks every glob.
  return pattern === path ? Number.MAX_SAFE_INTEGER : -1;
}

export function capabilitiesFor(path: string, policies: readonly PolicyRules[]): Set<Capability> {
  let best = -1;
  let caps = new Set<Capability>();
  for (const rules of policies) {
    for (const [pattern, granted] of Object.entries(rules)) {
      const score = specificity(pattern, path);
      if (score < 0 || score < best) continue;
      if (score > best) {
        best = score;
        caps = new Set();
      }
      for (const c of granted) caps.add(c);
    }
  }
  if (caps.has('deny')) return new Set(['deny']);
  return caps;
}

export function allows(path: string, needed: readonly Capability[], policies: readonly PolicyRules[]): boolean {
  const caps = capabilitiesFor(path, policies);
  if (caps.has('deny')) return false;
  return needed.some((c) => caps.has(c));
}
