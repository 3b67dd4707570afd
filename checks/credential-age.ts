/**
 * Credentials must not outlive their rotation policy: API keys older than 90 days
 * (*Runbook: Secrets & Identity for Aegis* §6), JWT_SECRET_KEY and INTERNAL_SECRET rotated
 * quarterly, the receipt and root signing keys yearly (*Secret Management*, "Inventory"). Rotations are audit rows, so their age
 * comes from the chain; a secret never rotated is as old as the audit log.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { duration, formatDuration } from '../src/core/duration';
import { resource } from '../src/core/finding';
import type { AuditRow } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';
import { ageDays, stringField } from './lib/payload';

const DAY = 86_400_000;
/** Policy names that are signing keys (rotated by `key_rotated` rows); others are secrets (`secret_rotated`). */
const SIGNING_KEYS = new Set(['receipt', 'root']);

export default defineCheck({
  meta: {
    id: 'credential-age',
    title: 'API keys and rotated secrets are younger than their rotation policy',
    description:
      'Reports unrevoked API keys older than the limit, and secrets and signing keys whose last rotation row (or, never rotated, the first audit row) is older than their policy. A pass proves rotation happens on schedule.',
    severity: 'medium',
    sources: ['postgres'],
    // Hourly: cheap queries, and the alert's `for` (two runs) stays short.
    schedule: '17 * * * *',
    checklist: ['rotation-procedures-tested'],
    runbook: 'docs/runbooks/credential-age.md',
    remediation:
      'Rotate the named credential with its runbook procedure (which writes the rotation audit row); revoke API keys that are no longer needed.',
  },
  messages: {
    apiKeyOld: 'API key {{id}} was created {{age}} days ago ({{createdAt}}) and is not revoked; the limit is {{max}} days.',
    rotationOverdue: '{{name}} {{when}} ({{since}}); its policy is every {{max}} days.',
  },
  options: z.object({
    apiKeyMaxAge: duration().default(90 * DAY),
    /** Rotation policy per secret (secret_rotated payload.secret) or signing key (`receipt`, `root`: key_rotated payload.key). */
    rotationPolicies: z
      .record(z.string().min(1), duration())
      .default({ JWT_SECRET_KEY: 90 * DAY, INTERNAL_SECRET: 90 * DAY, receipt: 365 * DAY, root: 365 * DAY }),
    /** apiKeyOld findings reported at most (the total is in the evidence). */
    maxFindings: z.number().int().positive().max(100_000).default(500),
  }),
  async run(ctx) {
    const db = ctx.source('postgres');
    const now = ctx.now();
    const { apiKeyMaxAge, rotationPolicies, maxFindings } = ctx.options;

    // API keys: the stream is consumed whole so the total is exact; findings are capped.
    const old: { id: string; createdAt: Date; lastUsedAt: Date | null }[] = [];
    let oldTotal = 0;
    for await (const k of db.apiKeys()) {
      if (ctx.signal.aborted) return;
      if (k.revokedAt !== null || now.getTime() - k.createdAt.getTime() <= apiKeyMaxAge) continue;
      oldTotal++;
      if (old.length < maxFindings) old.push(k);
    }
    for (const k of old) {
      // Only the key's id and dates: its prefix and hash are never read.
      ctx.report({
        messageId: 'apiKeyOld',
        data: { id: untrusted.text(k.id, 64), age: ageDays(k.createdAt, now), createdAt: k.createdAt.toISOString(), max: Math.round(apiKeyMaxAge / DAY) },
        resource: resource({ api_key: untrusted.id(k.id) }),
        evidence: {
          id: untrusted.text(k.id, 256),
          createdAt: k.createdAt.toISOString(),
          lastUsedAt: k.lastUsedAt ? k.lastUsedAt.toISOString() : null,
          ageDays: ageDays(k.createdAt, now),
          maxAge: formatDuration(apiKeyMaxAge),
          oldKeysTotal: oldTotal,
        },
      });
    }
    ctx.measure('api_keys_over_age', oldTotal, 'Unrevoked API keys older than the allowed age');

    const policies = Object.entries(rotationPolicies);
    if (policies.length === 0) return;
    const rotations = await db.rowsByAction(['secret_rotated', 'key_rotated']);
    const last = new Map<string, AuditRow>();
    for (const r of rotations) {
      const name = r.action === 'key_rotated' ? stringField(r.payload, 'key') : stringField(r.payload, 'secret');
      if (!name) continue;
      const isKey = r.action === 'key_rotated';
      // A secret and a key could share a name in config only by mistake; keep them apart.
      if (isKey !== SIGNING_KEYS.has(name)) continue;
      const prev = last.get(name);
      if (!prev || r.createdAt >= prev.createdAt) last.set(name, r);
    }
    let first: AuditRow | undefined;
    let firstLoaded = false;
    for (const [name, maxMs] of policies.sort(([a], [b]) => a.localeCompare(b))) {
      const isKey = SIGNING_KEYS.has(name);
      let since: Date | undefined;
      const row = last.get(name);
      if (row) since = row.createdAt;
      else {
        if (!firstLoaded) {
          first = await db.firstRow();
          firstLoaded = true;
        }
        // An empty audit log: nothing has happened yet, so nothing can be overdue.
        since = first?.createdAt;
      }
      if (!since || now.getTime() - since.getTime() <= maxMs) continue;
      ctx.report({
        messageId: 'rotationOverdue',
        data: {
          name: isKey ? `The ${name} signing key` : name,
          when: row
            ? `was last rotated ${ageDays(since, now)} days ago`
            : `has never been rotated, and the audit log began ${ageDays(since, now)} days ago`,
          since: since.toISOString(),
          max: Math.round(maxMs / DAY),
        },
        resource: isKey ? resource({ key: name }) : resource({ secret: name }),
        evidence: {
          name,
          kind: isKey ? 'signing key' : 'secret',
          measuredFrom: row ? 'last rotation row' : 'first audit row (never rotated)',
          row: row ? row.id : (first?.id ?? null),
          since: since.toISOString(),
          ageDays: ageDays(since, now),
          policy: formatDuration(maxMs),
        },
      });
    }
  },
});
