/**
 * Attestations: the manual evidence of the pre-pilot checklist, for what no check can prove
 * (a repository secret scan, a rehearsed rotation, loaded alert rules).
 *
 * ```yaml
 * attestations:
 *   - item: rotation-procedures-tested     # an id from CHECKLIST (core/checklist.ts)
 *     by: jane.doe
 *     at: 2026-01-15
 *     evidence: https://wiki.example.com/sec/rotation-drill-2026-01
 *     expires: 2026-07-15
 * ```
 * An expired attestation counts as no attestation.
 */
import { z } from 'zod';
import { AuditError, ErrorCodes } from '../core/errors';
import { readSmallFile } from '../config/files';
import { CHECKLIST_IDS } from '../core/checklist';
import { parseExpiry, parseInstant, parseYamlFile, validateAt } from './yaml-file';

export interface Attestation {
  item: string;
  by: string;
  /** ISO date-time of the attestation. */
  at: string;
  /** http(s) link to the evidence (a ticket, a wiki page, a CI run). */
  evidence: string;
  /** ISO date-time; a bare date in the file means the end of that day (UTC). */
  expires: string;
}

const text = z.string().trim().min(1, 'must not be empty');
const httpUrl = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'an http(s) URL to the evidence');

const entry = z
  .object({
    item: z.string(),
    by: text,
    at: z.string().refine((s) => Number.isFinite(parseInstant(s)), 'an ISO 8601 date or date-time'),
    evidence: httpUrl,
    expires: z.string().refine((s) => Number.isFinite(parseExpiry(s)), 'an ISO 8601 date or date-time, e.g. 2026-07-15'),
  })
  .strict();

export const attestationsFileSchema = z.object({ attestations: z.array(entry).default([]) }).strict();
// Entries are validated one by one, so one bad entry does not hide the problems of the others.
const fileShape = z.object({ attestations: z.array(z.unknown()).default([]) }).strict();

/** Validates attestations text; returns the attestations or every problem (`file:line:col: path: message`). */
export function parseAttestations(source: string, file: string): { attestations: Attestation[]; problems: string[] } {
  const parsed = parseYamlFile(source, file, fileShape);
  if (!parsed.value) return { attestations: [], problems: parsed.problems };
  const problems: string[] = [];
  const attestations: Attestation[] = [];
  parsed.value.attestations.forEach((raw, i) => {
    const at = (key: string) => `${parsed.at(['attestations', i, key])}: attestations[${i}].${key}`;
    const item = (raw as { item?: unknown } | null)?.item;
    if (typeof item === 'string' && !CHECKLIST_IDS.has(item)) {
      problems.push(`${at('item')}: unknown checklist item "${item}" (known: ${[...CHECKLIST_IDS].join(', ')})`);
    }
    const r = validateAt(entry, raw, parsed.at, ['attestations', i]);
    if (!r.success) {
      problems.push(...r.problems);
      return;
    }
    const a = r.value;
    if (!CHECKLIST_IDS.has(a.item)) return; // reported above
    const atMs = parseInstant(a.at);
    const expiresMs = parseExpiry(a.expires);
    if (expiresMs <= atMs) problems.push(`${at('expires')}: expires before it was attested (at ${a.at})`);
    attestations.push({ ...a, at: new Date(atMs).toISOString(), expires: new Date(expiresMs).toISOString() });
  });
  return { attestations, problems };
}

/** Reads and validates an attestations file; throws AUDIT_ERR_CONFIG listing every problem. */
export async function loadAttestations(file: string): Promise<Attestation[]> {
  const source = await readSmallFile(file, { noun: 'attestations file', readLabel: 'the attestations file' });
  const { attestations, problems } = parseAttestations(source, file);
  if (problems.length > 0) throw new AuditError(ErrorCodes.CONFIG, `invalid attestations file:\n  ${problems.join('\n  ')}`);
  return attestations;
}

export function attestationExpired(a: Attestation, now: Date): boolean {
  const t = Date.parse(a.expires);
  return !Number.isFinite(t) || t <= now.getTime();
}
