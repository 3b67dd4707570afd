/**
 * The violation catalog: every way the sandbox can be seeded to break a compliance rule, and
 * the findings (check id + resource, exactly as docs/findings.md builds them) each one makes
 * the checks report. A violation is selected by its own id or by a check id (all of that
 * check's violations); any combination can be seeded together.
 *
 * Entries are declared against the final deployment (a {@link ManifestContext}), not in
 * isolation, because some violations change what others cause: an empty historical-keys
 * table subsumes an orphaned fingerprint, and a receipt key whose only public copy was the
 * promoted table entry becomes unknown, so a bad signature under it can no longer be seen.
 */
import { resource } from '../core/finding';
import type { Severity } from '../core/types';

export interface ManifestEntry {
  check: string;
  resource: string;
}

export const VIOLATION_IDS = [
  'key-source-file',
  'key-source-generated',
  'receipt-key-not-deployed',
  'historical-keys-empty',
  'historical-key-orphaned',
  'bad-signature',
  'tampered-payload',
  'broken-link',
  'root-mismatch',
  'internal-secret-differs',
  'internal-secret-missing',
  'internal-secret-overlap-too-long',
  'auth-failure-burst',
  'api-key-old',
  'jwt-rotation-overdue',
] as const;

export type ViolationId = (typeof VIOLATION_IDS)[number];

/** What the entries of a violation depend on: the deployment as finally seeded. */
export interface ManifestContext {
  selected: ReadonlySet<ViolationId>;
  /** Name of the historical keys table (the `table=` of emptyAfterRotation). */
  historicalKeysTable: string;
  /** The audit instances whose latest start loads a key badly. */
  instances: { fileFallback: string; generated: string };
  /** Every receipt-key fingerprint that signed audit rows. */
  rowFingerprints: readonly string[];
  /** Fingerprints the auditor can find a public key for: configured keys and table entries. */
  knownFingerprints: ReadonlySet<string>;
  /** The old receipt key the `historical-key-orphaned` violation leaves out of the table. */
  orphanedFingerprint: string;
  /** The rows and root the receipt-chain violations break, and the key that signed each row. */
  rows: { badSignature: { id: number; fingerprint: string }; hashMismatch: number; chainBreak: number };
  tamperedRoot: number;
  /** Id of the API key the `api-key-old` violation adds. */
  oldApiKeyId: string;
  /** Services given a role by the internal-secret violations (undefined when the service set is too small). */
  roles: { drift?: string; missing?: string; overlap?: string };
}

export interface Violation {
  id: ViolationId;
  /** The check that reports it. */
  check: string;
  severity: Exclude<Severity, 'info'>;
  description: string;
  /** Whether `all` seeds it; false only where it would hide another violation entirely. */
  inAll: boolean;
  entries(ctx: ManifestContext): ManifestEntry[];
}

function unknownKeys(ctx: ManifestContext): ManifestEntry[] {
  return ctx.rowFingerprints
    .filter((fp) => !ctx.knownFingerprints.has(fp))
    .map((fp) => ({ check: 'receipt-chain', resource: resource({ fingerprint: fp }) }));
}

function role(ctx: ManifestContext, name: keyof ManifestContext['roles']): string {
  const s = ctx.roles[name];
  if (!s) throw new Error(`no service for the ${name} role`);
  return s;
}

const CATALOG: readonly Violation[] = [
  {
    id: 'key-source-file',
    check: 'signing-key-source',
    severity: 'high',
    description: 'one audit instance last started with the receipt key from the PEM file fallback',
    inAll: true,
    entries: (c) => [{ check: 'signing-key-source', resource: resource({ instance: c.instances.fileFallback, key: 'receipt' }) }],
  },
  {
    id: 'key-source-generated',
    check: 'signing-key-source',
    severity: 'critical',
    description: 'one audit instance last started with a root key generated in memory',
    inAll: true,
    entries: (c) => [{ check: 'signing-key-source', resource: resource({ instance: c.instances.generated, key: 'root' }) }],
  },
  {
    id: 'receipt-key-not-deployed',
    check: 'signing-key-fingerprint',
    severity: 'critical',
    description:
      'a new receipt key was written to the env file and the PEM file (and the old one promoted) but never deployed: recent rows are still signed by the old key',
    inAll: true,
    entries: () => [
      { check: 'signing-key-fingerprint', resource: resource({ key: 'receipt', source: 'env_file' }) },
      { check: 'signing-key-fingerprint', resource: resource({ key: 'receipt', source: 'pem_file' }) },
    ],
  },
  {
    id: 'historical-keys-empty',
    check: 'historical-keys',
    severity: 'critical',
    description: 'receipt keys were rotated but transparency_historical_keys is empty; rows signed by old keys have no public key',
    // Seeding it with the orphan would hide the orphan; `all` shows the orphan instead.
    inAll: false,
    entries: (c) => [{ check: 'historical-keys', resource: resource({ table: c.historicalKeysTable }) }, ...unknownKeys(c)],
  },
  {
    id: 'historical-key-orphaned',
    check: 'historical-keys',
    severity: 'critical',
    description: 'one old receipt key fingerprint on audit rows was never promoted to the historical keys table',
    inAll: true,
    entries: (c) =>
      c.selected.has('historical-keys-empty')
        ? [] // the empty table subsumes the orphan (docs/findings.md)
        : [{ check: 'historical-keys', resource: resource({ fingerprint: c.orphanedFingerprint }) }, ...unknownKeys(c)],
  },
  {
    id: 'bad-signature',
    check: 'receipt-chain',
    severity: 'critical',
    description: 'one audit row carries a signature that does not verify under its key',
    inAll: true,
    // A signature under a key nobody has cannot be checked: that key is reported as unknown instead.
    entries: (c) =>
      c.knownFingerprints.has(c.rows.badSignature.fingerprint)
        ? [{ check: 'receipt-chain', resource: resource({ row: c.rows.badSignature.id }) }]
        : [],
  },
  {
    id: 'tampered-payload',
    check: 'receipt-chain',
    severity: 'critical',
    description: "one audit row's payload was edited after it was hashed and signed",
    inAll: true,
    entries: (c) => [{ check: 'receipt-chain', resource: resource({ row: c.rows.hashMismatch }) }],
  },
  {
    id: 'broken-link',
    check: 'receipt-chain',
    severity: 'critical',
    description: "one audit row's prev_hash is not the previous row's hash (a row went missing)",
    inAll: true,
    entries: (c) => [{ check: 'receipt-chain', resource: resource({ row: c.rows.chainBreak }) }],
  },
  {
    id: 'root-mismatch',
    check: 'receipt-chain',
    severity: 'critical',
    description: "one transparency root's root_hash is not the hash of its row",
    inAll: true,
    entries: (c) => [{ check: 'receipt-chain', resource: resource({ root: c.tamperedRoot }) }],
  },
  {
    id: 'internal-secret-differs',
    check: 'internal-secret-drift',
    severity: 'high',
    description: 'one service holds an INTERNAL_SECRET the others do not, with no overlap to explain it',
    inAll: true,
    entries: () => [{ check: 'internal-secret-drift', resource: resource({ secret: 'INTERNAL_SECRET' }) }],
  },
  {
    id: 'internal-secret-missing',
    check: 'internal-secret-drift',
    severity: 'high',
    description: 'one service has no INTERNAL_SECRET',
    inAll: true,
    entries: (c) => [{ check: 'internal-secret-drift', resource: resource({ service: role(c, 'missing'), secret: 'INTERNAL_SECRET' }) }],
  },
  {
    id: 'internal-secret-overlap-too-long',
    check: 'internal-secret-drift',
    severity: 'medium',
    description: 'one service kept INTERNAL_SECRET_PREVIOUS since the last rotation, 75 days ago',
    inAll: true,
    // While INTERNAL_SECRET drifts, the check reports the drift alone: an overlap's age means
    // nothing until the services agree on the current value.
    entries: (c) =>
      c.selected.has('internal-secret-differs')
        ? []
        : [{ check: 'internal-secret-drift', resource: resource({ service: role(c, 'overlap'), secret: 'INTERNAL_SECRET_PREVIOUS' }) }],
  },
  {
    id: 'auth-failure-burst',
    check: 'auth-failure-spike',
    severity: 'high',
    description: 'one client failed authentication 150 times at the gateway in the last 10 minutes (time-sensitive: audit within 5 minutes of building)',
    inAll: true,
    entries: () => [{ check: 'auth-failure-spike', resource: resource({ window: 'current' }) }],
  },
  {
    id: 'api-key-old',
    check: 'credential-age',
    severity: 'medium',
    description: 'one unrevoked API key was created 120 days ago',
    inAll: true,
    entries: (c) => [{ check: 'credential-age', resource: resource({ api_key: c.oldApiKeyId }) }],
  },
  {
    id: 'jwt-rotation-overdue',
    check: 'credential-age',
    severity: 'medium',
    description: 'JWT_SECRET_KEY was last rotated 120 days ago (policy: quarterly)',
    inAll: true,
    entries: () => [{ check: 'credential-age', resource: resource({ secret: 'JWT_SECRET_KEY' }) }],
  },
];

export function listViolations(): readonly Violation[] {
  return CATALOG;
}

export function violation(id: ViolationId): Violation {
  const v = CATALOG.find((x) => x.id === id);
  if (!v) throw new Error(`unknown violation ${id}`);
  return v;
}

export function isViolationId(s: string): s is ViolationId {
  return (VIOLATION_IDS as readonly string[]).includes(s);
}

export class UnknownViolationError extends Error {
  constructor(readonly unknown: string[]) {
    const checks = [...new Set(CATALOG.map((v) => v.check))];
    super(
      `unknown violation${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}; ` +
        `known violations: ${VIOLATION_IDS.join(', ')}; or a check id: ${checks.join(', ')}; or "all" / "none"`,
    );
    this.name = 'UnknownViolationError';
  }
}

/** Resolves a selection (`all`, `none`, or violation / check ids) to violation ids in catalog order. */
export function resolveViolations(selection: 'all' | 'none' | readonly string[]): ViolationId[] {
  if (selection === 'all') return CATALOG.filter((v) => v.inAll).map((v) => v.id);
  if (selection === 'none') return [];
  const chosen = new Set<ViolationId>();
  const unknown: string[] = [];
  for (const raw of selection) {
    const s = raw.trim();
    if (s === '') continue;
    if (s === 'all') resolveViolations('all').forEach((id) => chosen.add(id));
    else if (s === 'none') continue;
    else if (isViolationId(s)) chosen.add(s);
    else {
      const byCheck = CATALOG.filter((v) => v.check === s);
      if (byCheck.length === 0) unknown.push(s);
      byCheck.forEach((v) => chosen.add(v.id));
    }
  }
  if (unknown.length > 0) throw new UnknownViolationError(unknown);
  return CATALOG.filter((v) => chosen.has(v.id)).map((v) => v.id);
}

/** The manifest entries of a selection, deduplicated and sorted (check, then resource). */
export function manifestEntries(ctx: ManifestContext): ManifestEntry[] {
  const all = CATALOG.filter((v) => ctx.selected.has(v.id)).flatMap((v) => v.entries(ctx));
  const seen = new Map<string, ManifestEntry>();
  for (const e of all) seen.set(`${e.check}\n${e.resource}`, e);
  return [...seen.values()].sort((a, b) => (a.check === b.check ? (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0) : a.check < b.check ? -1 : 1));
}
