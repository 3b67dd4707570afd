import type { Finding, Waiver } from './types';

/** `*` matches any run of characters; everything else is literal. */
export function resourcePatternToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

export function waiverExpired(w: Waiver, now: Date): boolean {
  const t = Date.parse(w.expires);
  return !Number.isFinite(t) || t <= now.getTime();
}

/** The first unexpired waiver that covers the finding (same check, resource matches the pattern). */
export function findWaiver(f: Pick<Finding, 'check' | 'resource'>, waivers: readonly Waiver[], now: Date): Waiver | undefined {
  return waivers.find((w) => w.check === f.check && !waiverExpired(w, now) && resourcePatternToRegExp(w.resource).test(f.resource));
}

/** Splits waivers into those that still cover findings and those that expired (which cover nothing). */
export function partitionWaivers(waivers: readonly Waiver[], now: Date): { active: Waiver[]; expired: Waiver[] } {
  const active: Waiver[] = [];
  const expired: Waiver[] = [];
  for (const w of waivers) (waiverExpired(w, now) ? expired : active).push(w);
  return { active, expired };
}
