/**
 * After a rotation, every key that signed rows or roots but is no longer current must be
 * in transparency_historical_keys, with a public key that hashes to its fingerprint, or
 * every receipt it signed stops verifying (*Secret Management*, "Rotation" → "Receipt and
 * root signing keys"; "What to audit when reviewing a deployment" 3).
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import type { FingerprintUsage } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';
import { FINGERPRINT_RE, parsePublicKeyPem, shortFingerprint } from './lib/keys';
import { stringField } from './lib/payload';

/** A fingerprint named in a row's payload (hostile text): itself when shaped like one, else a stand-in. */
function fingerprintField(payload: unknown, name: string): string | undefined {
  const v = stringField(payload, name);
  return v === undefined ? undefined : untrusted.shaped(v, FINGERPRINT_RE);
}

interface Seen {
  rows?: FingerprintUsage;
  roots?: FingerprintUsage;
  rotationRows: number[];
}

export default defineCheck({
  meta: {
    id: 'historical-keys',
    title: 'Historical signing keys are recorded after rotation',
    description:
      'Collects every key fingerprint that signed audit rows or transparency roots, or was rotated out, and requires each non-current one to be in the historical keys table with a matching public key. A pass proves receipts issued before a rotation still verify.',
    severity: 'critical',
    sources: ['postgres'],
    schedule: '*/5 * * * *',
    checklist: ['historical-keys-recorded', 'rotation-procedures-tested'],
    runbook: 'docs/runbooks/historical-keys.md',
    remediation:
      'Promote the old key fingerprint and its SPKI public key to transparency_historical_keys before deploying a new key; for a key already rotated out, insert its public key now.',
  },
  messages: {
    emptyAfterRotation:
      '{{table}} is empty although signing keys were rotated: {{count}} non-current fingerprint(s) signed rows or roots, and none of them can be verified.',
    orphaned: 'Fingerprint {{fingerprint}} signed {{what}} but has no entry in {{table}}: those signatures cannot be verified.',
    publicKeyMismatch: 'The {{table}} entry for {{fingerprint}} holds a public key that does not hash to that fingerprint ({{reason}}).',
  },
  options: z.object({}),
  async run(ctx) {
    const db = ctx.source('postgres');
    // The configured name (sources.postgres.tables.historical_keys), for messages and the resource.
    const table = db.historicalKeysTable;
    const [usage, rootUsage, rotations, historical, newestRows, newestRoots] = await Promise.all([
      db.fingerprintUsage(),
      db.rootFingerprintUsage(),
      db.rowsByAction(['key_rotated']),
      db.historicalKeys(),
      db.recentRows(1),
      db.recentRoots(1),
    ]);

    // Entries are checked whether or not a rotation happened: a wrong entry is wrong either way.
    for (const h of historical) {
      let reason: string | undefined;
      let computed: string | null = null;
      try {
        const parsed = parsePublicKeyPem(h.publicKey);
        computed = parsed.fingerprint;
        if (computed !== h.fingerprint) reason = `it hashes to ${shortFingerprint(computed)}`;
        else if (parsed.keyType !== 'ed25519') reason = `it is a ${parsed.keyType} key, not ed25519`;
      } catch (e) {
        reason = (e as Error).message;
      }
      if (reason === undefined) continue;
      ctx.report({
        messageId: 'publicKeyMismatch',
        data: { table, fingerprint: shortFingerprint(h.fingerprint), reason },
        resource: resource({ fingerprint: h.fingerprint }),
        evidence: {
          fingerprint: h.fingerprint,
          computedFingerprint: computed,
          problem: reason,
          promotedAt: h.promotedAt ? h.promotedAt.toISOString() : null,
        },
      });
    }

    const seen = new Map<string, Seen>();
    const entry = (fp: string): Seen => {
      let s = seen.get(fp);
      if (!s) seen.set(fp, (s = { rotationRows: [] }));
      return s;
    };
    for (const u of usage) entry(u.fingerprint).rows = u;
    for (const u of rootUsage) entry(u.fingerprint).roots = u;
    // Rotated out, and not rotated back in by a later rotation (rows come oldest first). The
    // rotation row is signed by the outgoing key, so the newest row or root can still carry a
    // retired fingerprint: the rotation row, not the newest signature, says it is not current.
    const retired = new Set<string>();
    for (const r of rotations) {
      // Payload text: only a fingerprint's shape is shown, anything else as a stand-in.
      const old = fingerprintField(r.payload, 'old_fingerprint');
      if (old) {
        entry(old).rotationRows.push(r.id);
        retired.add(old);
      }
      const next = fingerprintField(r.payload, 'new_fingerprint');
      if (next) retired.delete(next);
    }

    const rotated = rotations.length > 0 || usage.length > 1 || rootUsage.length > 1;
    if (!rotated) return;

    const current = new Set<string>();
    if (newestRows[0]) current.add(newestRows[0].keyFingerprint);
    if (newestRoots[0]) current.add(newestRoots[0].keyFingerprint);
    for (const fp of retired) current.delete(fp);
    const nonCurrent = [...seen.keys()].filter((fp) => !current.has(fp) && fp !== '').sort();
    if (nonCurrent.length === 0) return;

    if (historical.length === 0) {
      ctx.report({
        messageId: 'emptyAfterRotation',
        data: { table, count: nonCurrent.length },
        resource: resource({ table }),
        evidence: {
          table,
          rotationRows: rotations.slice(0, 20).map((r) => r.id),
          rotations: rotations.length,
          nonCurrentFingerprints: nonCurrent.slice(0, 50),
          currentFingerprints: [...current],
        },
      });
      return;
    }

    const recorded = new Set(historical.map((h) => h.fingerprint));
    for (const fp of nonCurrent) {
      if (recorded.has(fp)) continue;
      const s = seen.get(fp) as Seen;
      const what: string[] = [];
      if (s.rows) what.push(`${s.rows.rows} audit row(s) (ids ${s.rows.firstId}–${s.rows.lastId})`);
      if (s.roots) what.push(`${s.roots.rows} root(s)`);
      if (what.length === 0) what.push(`no remaining rows, but was rotated out in row ${s.rotationRows.join(', ')}`);
      ctx.report({
        messageId: 'orphaned',
        data: { fingerprint: shortFingerprint(fp), what: what.join(' and '), table },
        resource: resource({ fingerprint: fp }),
        evidence: {
          fingerprint: fp,
          auditRows: s.rows ? { count: s.rows.rows, firstId: s.rows.firstId, lastId: s.rows.lastId, lastAt: s.rows.lastAt.toISOString() } : null,
          roots: s.roots ? { count: s.roots.rows, firstId: s.roots.firstId, lastId: s.roots.lastId } : null,
          rotationRows: s.rotationRows.slice(0, 20),
        },
      });
    }
  },
});
