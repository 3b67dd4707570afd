/**
 * INTERNAL_SECRET authenticates every internal call, so every service must hold the same
 * value; a mismatch is a 401 on every call between the two groups (*Secret Management*,
 * "What to audit when reviewing a deployment" 4). During a rotation the platform accepts INTERNAL_SECRET_PREVIOUS as well, so a
 * difference every service accepts is an overlap, not drift — but an overlap must close.
 * Values are compared by keyed fingerprint only; reports name groups of services, A, B, ….
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { duration, formatDuration } from '../src/core/duration';
import { resource } from '../src/core/finding';
import type { SecretHolder } from '../src/core/sources';
import { isValidDate } from '../src/core/time';

function label(i: number): string {
  // A..Z, then AA, AB, … — deployments with more than 26 distinct values are pathological, but must not crash.
  return i < 26 ? String.fromCharCode(65 + i) : label(Math.floor(i / 26) - 1) + String.fromCharCode(65 + (i % 26));
}

function who(h: SecretHolder): string {
  return `${h.service} (${h.provider})`;
}

export default defineCheck({
  meta: {
    id: 'internal-secret-drift',
    title: 'INTERNAL_SECRET is identical across services',
    description:
      'Compares every holder of INTERNAL_SECRET (per service and provider) by keyed fingerprint. A pass proves every service accepts every other service\'s internal calls; an INTERNAL_SECRET_PREVIOUS overlap is recognised as a rotation in progress and bounded in age.',
    severity: 'high',
    sources: ['secrets'],
    schedule: '*/5 * * * *',
    checklist: ['internal-secret-identical'],
    runbook: 'docs/runbooks/internal-secret-drift.md',
    remediation:
      'Set the same INTERNAL_SECRET on every service (with INTERNAL_SECRET_PREVIOUS holding the old value while they roll), then remove INTERNAL_SECRET_PREVIOUS everywhere.',
  },
  messages: {
    drift: '{{secret}} differs across services and no overlap explains it: {{groups}}.',
    missing: 'Service {{service}} has no {{secret}} in any secret provider.',
    overlapActive: 'Service {{service}} still accepts the previous {{secret}} ({{previous}} set {{age}} ago): a rotation overlap is open.',
    overlapTooLong: 'Service {{service}} has accepted the previous {{secret}} for {{age}}, longer than the allowed {{max}}: close the rotation overlap.',
  },
  options: z.object({
    secret: z.string().min(1).default('INTERNAL_SECRET'),
    previous: z.string().min(1).default('INTERNAL_SECRET_PREVIOUS'),
    /** How long an INTERNAL_SECRET_PREVIOUS may stay in place. */
    maxOverlap: duration().default(7 * 86_400_000),
    /** Services that must hold the secret; empty = every service of the deployment. */
    services: z.array(z.string().min(1)).default([]),
  }),
  async run(ctx) {
    const store = ctx.source('secrets');
    const { secret, previous, maxOverlap } = ctx.options;
    const services = ctx.options.services.length > 0 ? ctx.options.services : store.services();
    const [currents, previousHolders] = await Promise.all([store.holders(secret), store.holders(previous)]);
    const fp = (h: SecretHolder) => ctx.fingerprinter.fingerprint(h.value);

    for (const service of services) {
      if (currents.some((h) => h.service === service)) continue;
      ctx.report({
        messageId: 'missing',
        data: { service, secret },
        resource: resource({ service, secret }),
        evidence: { service, secret, providers: store.providers() },
      });
    }
    if (currents.length === 0) return;

    // Groups of holders that agree, largest first, labelled A, B, …
    const groupsByFp = new Map<string, SecretHolder[]>();
    for (const h of currents) groupsByFp.set(fp(h), [...(groupsByFp.get(fp(h)) ?? []), h]);
    const groups = [...groupsByFp.entries()]
      .map(([f, hs]) => ({ fp: f, members: hs.map(who).sort() }))
      .sort((a, b) => b.members.length - a.members.length || a.members[0].localeCompare(b.members[0]));
    const labelOf = new Map(groups.map((g, i) => [g.fp, label(i)]));
    const groupEvidence = Object.fromEntries(groups.map((g, i) => [label(i), g.members]));

    // What each service accepts: its current value(s) and its previous one(s).
    const accepts = new Map<string, Set<string>>();
    for (const h of [...currents, ...previousHolders]) {
      let s = accepts.get(h.service);
      if (!s) accepts.set(h.service, (s = new Set()));
      s.add(fp(h));
    }
    const holderServices = [...new Set(currents.map((h) => h.service))];
    const explained =
      groups.length === 1 || currents.every((h) => holderServices.every((s) => accepts.get(s)?.has(fp(h)) === true));

    if (!explained) {
      const withPrevious = [...new Set(previousHolders.map(who))].sort();
      ctx.report({
        messageId: 'drift',
        data: { secret, groups: groups.map((g, i) => `${label(i)}: ${g.members.join(', ')}`).join('; ') },
        resource: resource({ secret }),
        evidence: {
          secret,
          groups: groupEvidence,
          holdersOfPrevious: withPrevious,
          // For each previous value, which current group it equals (if any): shows a half-done rotation.
          previousMatches: Object.fromEntries(previousHolders.map((h) => [who(h), labelOf.get(fp(h)) ?? null])),
        },
      });
      return;
    }

    // No drift: any PREVIOUS still in place is an overlap, a note while young, a finding when old.
    const now = ctx.now().getTime();
    const byService = new Map<string, SecretHolder[]>();
    for (const h of previousHolders) byService.set(h.service, [...(byService.get(h.service) ?? []), h]);
    for (const [service, hs] of [...byService].sort(([a], [b]) => a.localeCompare(b))) {
      // The overlap began when PREVIOUS was written; without a date, when the current value was.
      const dates = hs
        .map((h) => h.lastModified)
        .concat(hs.every((h) => !h.lastModified) ? currents.filter((c) => c.service === service).map((c) => c.lastModified) : [])
        .filter(isValidDate);
      const since = dates.length > 0 ? new Date(Math.min(...dates.map((d) => d.getTime()))) : undefined;
      const ageMs = since ? now - since.getTime() : undefined;
      const res = resource({ service, secret: previous });
      const evidence = {
        service,
        secret: previous,
        origins: hs.map((h) => h.origin),
        since: since ? since.toISOString() : null,
        maxOverlap: formatDuration(maxOverlap),
        groups: groupEvidence,
      };
      if (ageMs !== undefined && ageMs > maxOverlap) {
        ctx.report({
          messageId: 'overlapTooLong',
          data: { service, secret, age: formatDuration(ageMs), max: formatDuration(maxOverlap) },
          resource: res,
          evidence,
          severity: 'medium',
        });
      } else {
        ctx.report({
          messageId: 'overlapActive',
          data: { service, secret, previous, age: ageMs === undefined ? 'an unknown time' : formatDuration(ageMs) },
          resource: res,
          evidence,
          severity: 'info',
        });
      }
    }
  },
});
