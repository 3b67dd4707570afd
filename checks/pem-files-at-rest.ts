/**
 * The receipt and root signing keys may fall back to PEM files on the volume; production
 * should load them from env "so the EC2's disk does not hold the key" (*Secret Management*,
 * "Storage classes", Class 2). While the audit service has its keys in env, a private-key PEM
 * left at the configured paths or in their directories is a copy of a key on disk for no
 * reason. Its public fingerprint says which key it is: the current one, a historical one
 * (still trusted to verify old receipts, so it can forge them), or one the auditor does not
 * know. Only the head of each file is read, and no key material leaves the source.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import type { SigningKeyName } from '../src/core/sources';
import { shortFingerprint } from './lib/keys';
import { untrusted } from '../src/core/untrusted';

const KEYS: readonly SigningKeyName[] = ['receipt', 'root'];
const MAX_PATH_IN_MESSAGE = 200;

export default defineCheck({
  meta: {
    id: 'pem-files-at-rest',
    title: 'No private-key PEM remains on the volume while the signing keys load from env',
    description:
      "Reads the head of the configured PEM paths and of every file in their directories. While the audit service's signing keys are in env, a pass proves no private-key PEM is left on the volume — not the current keys, not a historical key (which can still forge old receipts), not a key nobody recognises.",
    severity: 'high',
    sources: ['secrets'],
    schedule: '7 * * * *',
    // A private key left on disk is a leak from the first run that finds it.
    pagesOnFirstFailure: true,
    checklist: ['no-plaintext-secrets'],
    runbook: 'docs/runbooks/pem-files-at-rest.md',
    remediation:
      'Confirm the audit service loads the key from env (signing-key-source passes), then delete the file (shred it where the volume allows) and any backup of it; a historical or unknown key found on disk is a leak: rotate as Secret Management says.',
  },
  messages: {
    current: 'A private-key PEM of the current {{key}} signing key ({{fingerprint}}) remains at {{path}}, though the key is loaded from env.',
    historical: 'A private-key PEM of a historical receipt or root key ({{fingerprint}}) remains at {{path}}: whoever reads it can forge receipts that verify against the historical keys table.',
    unknown: 'A private-key PEM of a key the auditor does not know ({{fingerprint}}) remains at {{path}}.',
    unreadable: 'A private key ({{label}}) remains at {{path}}; the auditor cannot tell which: {{problem}}.',
    fallbackInUse: 'The {{key}} signing key is not in env, so the PEM at {{path}} is its only copy and was not judged (signing-key-source reports the fallback).',
  },
  options: z.object({}),
  async run(ctx) {
    const secrets = ctx.source('secrets');
    const files = await secrets.privateKeyFiles();

    // The keys as the service loads them from env (env file, SSM, Vault): not the PEM copies.
    const current = new Map<string, SigningKeyName>();
    const inEnv = new Set<SigningKeyName>();
    for (const key of KEYS) {
      for (const h of await secrets.signingKeys(key)) {
        if (h.provider === 'pem_file') continue;
        current.set(h.fingerprint, key);
        inEnv.add(key);
      }
    }
    // Historical: in the historical keys table, or seen signing rows or roots, when the audit database is configured.
    const historical = new Set<string>();
    const db = ctx.sources.postgres;
    if (db && files.length > 0) {
      for (const h of await db.historicalKeys()) historical.add(h.fingerprint);
      for (const u of [...(await db.fingerprintUsage()), ...(await db.rootFingerprintUsage())]) historical.add(u.fingerprint);
    }

    for (const f of files) {
      const path = untrusted.text(f.path, MAX_PATH_IN_MESSAGE);
      const res = resource({ path: untrusted.id(f.path, 400) });
      const evidence = { path: untrusted.text(f.path, 400), label: untrusted.text(f.label, 40), ...(f.fingerprint ? { fingerprint: f.fingerprint } : {}), ...(f.keyType ? { keyType: f.keyType } : {}), ...(f.configuredFor ? { configuredFor: f.configuredFor } : {}) };
      if (f.configuredFor && !inEnv.has(f.configuredFor)) {
        ctx.report({ messageId: 'fallbackInUse', data: { key: f.configuredFor, path }, resource: res, evidence, severity: 'info' });
        continue;
      }
      if (!f.fingerprint) {
        ctx.report({ messageId: 'unreadable', data: { label: untrusted.text(f.label, 40), path, problem: f.problem ?? 'unreadable' }, resource: res, evidence: { ...evidence, problem: f.problem ?? 'unreadable' }, severity: 'medium' });
        continue;
      }
      const fingerprint = shortFingerprint(f.fingerprint);
      const key = current.get(f.fingerprint);
      if (key) ctx.report({ messageId: 'current', data: { key, fingerprint, path }, resource: res, evidence: { ...evidence, which: 'current', key } });
      else if (historical.has(f.fingerprint)) ctx.report({ messageId: 'historical', data: { fingerprint, path }, resource: res, evidence: { ...evidence, which: 'historical' } });
      else ctx.report({ messageId: 'unknown', data: { fingerprint, path }, resource: res, evidence: { ...evidence, which: 'unknown' }, severity: 'medium' });
    }
    ctx.measure('private_key_files_at_rest', files.length, 'Private-key PEM files found at the configured PEM paths and in their directories');
  },
});
