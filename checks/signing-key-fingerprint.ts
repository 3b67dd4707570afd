/**
 * The configured receipt signing key (and root key, when configured) must be the key
 * that signs the chain now: its public fingerprint equals the one on the most recent
 * audit rows (transparency roots for `root`). *Secret Management*, "What to audit when
 * reviewing a deployment" 2.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { AuditError, ErrorCodes, badData } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { SigningKeyHolder, SigningKeyName } from '../src/core/sources';
import { shortFingerprint } from './lib/keys';
import { stringField } from './lib/payload';

interface Signed {
  id: number;
  createdAt: Date;
  keyFingerprint: string;
}

/** Fingerprints on the recent items, newest first, with how many items each signed. */
function recentFingerprints(items: readonly Signed[]): { fingerprint: string; count: number; lastId: number }[] {
  const by = new Map<string, { fingerprint: string; count: number; lastId: number }>();
  for (const it of items) {
    const e = by.get(it.keyFingerprint);
    if (e) e.count++;
    else by.set(it.keyFingerprint, { fingerprint: it.keyFingerprint, count: 1, lastId: it.id });
  }
  return [...by.values()];
}

export default defineCheck({
  meta: {
    id: 'signing-key-fingerprint',
    title: 'The configured signing keys are the keys on the most recent audit rows and roots',
    description:
      "Compares the public fingerprint of every configured copy of the receipt (and root) signing key with the key_fingerprint of the newest audit rows (transparency roots). A pass proves the deployed key is the one signing the chain; a mismatch means receipts are signed by a key the deployment does not hold, or a copy of the key is stale.",
    severity: 'critical',
    sources: ['secrets', 'postgres'],
    schedule: '*/5 * * * *',
    checklist: ['receipt-key-matches-rows'],
    runbook: 'docs/runbooks/signing-key-fingerprint.md',
    remediation:
      'Find which copy is stale (evidence names its origin), put the key that signs the current rows in every provider, and restart the audit service; if the rows carry an unexpected key, treat it as a key compromise.',
  },
  messages: {
    rotationPending:
      'The {{key}} signing key in {{provider}} ({{configured}}) is the new key of the rotation recorded in audit row {{rotationId}}; nothing has been signed since, so the newest {{items}} still carry the old key {{current}}.',
    mismatch:
      'The {{key}} signing key in {{provider}} has fingerprint {{configured}}, but the most recent {{items}} (newest {{newestId}}) are signed by {{current}}.',
  },
  options: z.object({
    /** How many of the newest audit rows to read. */
    recentRows: z.number().int().positive().max(100_000).default(100),
    /** How many of the newest transparency roots to read. */
    recentRoots: z.number().int().positive().max(100_000).default(10),
  }),
  async run(ctx) {
    const secrets = ctx.source('secrets');
    const db = ctx.source('postgres');

    // The latest recorded rotation of each key: right after it, the newest rows (the rotation
    // row itself is signed by the outgoing key) or roots still carry the old key while the
    // deployment rightly holds the new one. That is a rotation in progress, not a mismatch.
    const rotations = await db.rowsByAction(['key_rotated']);
    const latestRotation = (key: SigningKeyName) => {
      const r = [...rotations].reverse().find((row) => stringField(row.payload, 'key') === key);
      if (!r) return undefined;
      return { id: r.id, createdAt: r.createdAt, old: stringField(r.payload, 'old_fingerprint'), next: stringField(r.payload, 'new_fingerprint') };
    };

    const report = (key: SigningKeyName, holders: SigningKeyHolder[], items: readonly Signed[], itemName: 'audit rows' | 'transparency roots') => {
      const current = items[0].keyFingerprint;
      const rotation = latestRotation(key);
      const nothingSignedSince =
        rotation !== undefined &&
        rotation.old === current &&
        (itemName === 'audit rows' ? items[0].id <= rotation.id : items[0].createdAt.getTime() <= rotation.createdAt.getTime());
      const recent = recentFingerprints(items);
      // One finding per provider (the resource); several copies in one provider share it.
      const byProvider = new Map<string, SigningKeyHolder[]>();
      for (const h of holders) {
        if (h.fingerprint === current) continue;
        byProvider.set(h.provider, [...(byProvider.get(h.provider) ?? []), h]);
      }
      for (const [provider, hs] of byProvider) {
        const configured = hs[0].fingerprint;
        const seen = recent.find((r) => r.fingerprint === configured);
        if (nothingSignedSince && rotation && hs.every((h) => h.fingerprint === rotation.next)) {
          ctx.report({
            messageId: 'rotationPending',
            data: { key, provider, configured: shortFingerprint(configured), current: shortFingerprint(current), items: itemName, rotationId: rotation.id },
            resource: resource({ key, source: provider }),
            evidence: { key, provider, origins: hs.map((h) => h.origin), rotationRow: rotation.id, rotatedAt: rotation.createdAt.toISOString(), newest: { id: items[0].id, createdAt: items[0].createdAt.toISOString() } },
            severity: 'info',
          });
          continue;
        }
        ctx.report({
          messageId: 'mismatch',
          data: { key, provider, configured: shortFingerprint(configured), current: shortFingerprint(current), items: itemName, newestId: items[0].id },
          resource: resource({ key, source: provider }),
          evidence: {
            key,
            provider,
            origins: hs.map((h) => h.origin),
            configuredFingerprints: [...new Set(hs.map((h) => h.fingerprint))],
            currentFingerprint: current,
            newest: { id: items[0].id, createdAt: items[0].createdAt.toISOString() },
            examined: items.length,
            // Whether the configured key signed any of the examined items (a stale copy) or none (a foreign key).
            configuredLastSigned: seen ? seen.lastId : null,
            recentFingerprints: recent.map((r) => ({ fingerprint: r.fingerprint, count: r.count, lastId: r.lastId })),
          },
        });
      }
    };

    const receiptHolders = await secrets.signingKeys('receipt');
    if (receiptHolders.length === 0) {
      throw new AuditError(
        ErrorCodes.CONFIG,
        `no receipt signing key is configured in any secret provider (looked in ${secrets.providers().join(', ') || 'none'}), so there is nothing to compare with the audit rows; ` +
          'configure the audit env file (sources.secrets.env_files) or sources.secrets.pem_files.receipt',
      );
    }
    const rows = await db.recentRows(ctx.options.recentRows);
    if (rows.length === 0) {
      throw badData('postgres', 'audit_log', 'the table is empty: no audit row carries a key fingerprint to compare the configured receipt key with');
    }
    report('receipt', receiptHolders, rows, 'audit rows');

    // The root key is optional in the deployment: when none is configured there is nothing to compare.
    const rootHolders = await secrets.signingKeys('root');
    if (rootHolders.length === 0) return;
    const roots = await db.recentRoots(ctx.options.recentRoots);
    if (roots.length === 0) {
      ctx.logger.info('No transparency roots yet: the root key cannot be compared');
      return;
    }
    report('root', rootHolders, roots, 'transparency roots');
  },
});
