/**
 * receipt-chain's state: a checkpoint bound to the identity of the chain it verified
 * (DESIGN.md "Judging over time"), and a pointer per deployment to the chain it verified
 * last. The identity is the server (Postgres system_identifier), the database (name and
 * OID), schema.table and the first row; the checkpoint is stored under a key made from it,
 * so two configs share a checkpoint only when they audit the same chain, and a rebuilt or
 * restored database under the same deployment name never inherits another chain's progress.
 * Public chain data only: ids, hashes, timestamps.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ChainLocation } from '../../src/core/sources';
import { untrusted } from '../../src/core/untrusted';

export interface ChainIdentity extends ChainLocation {
  /** The chain's first row, null while the table is empty. */
  firstRowId: number | null;
  firstRowHash: string | null;
}

const identitySchema = z.object({
  systemIdentifier: z.string().nullable(),
  systemIdentifierUnavailable: z.string().optional(),
  database: z.string(),
  databaseOid: z.number(),
  table: z.string(),
  firstRowId: z.number().int().nullable(),
  firstRowHash: z.string().nullable(),
});

const id = z.number().int().min(0);
const isoTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), 'an ISO time');

const checkpointSchema = z.object({
  version: z.literal(2),
  identity: identitySchema,
  /** Every row up to lastId has been verified, in id order from the first. */
  lastId: id,
  lastRowHash: z.string(),
  lastRootId: id,
  /** The highest up_to_id of the roots checked so far. */
  rootUpToId: id,
  broken: z.array(z.object({ id, prevId: id.nullable() })),
  /** More rows (or roots) were broken than the checkpoint holds: the next run verifies everything again. */
  overflow: z.boolean(),
  unknownKeys: z.array(z.object({ fingerprint: z.string(), rows: z.number().int(), firstId: id, lastId: id })),
  brokenRoots: z.array(id),
  /** Rows that changed (or vanished) after they were verified: their hash when verified. */
  changed: z.array(z.object({ id, hash: z.string() })),
  /** Rows of the chain verified up to lastId. */
  verifiedTotal: z.number().int().min(0),
  /** When the pass that verified the chain from its first row began. */
  passStartedAt: isoTime,
  /** That pass reached the end of the chain and checked its roots (a long first pass takes several runs). */
  passComplete: z.boolean(),
  rehash: z.object({
    /** Rows with id ≤ cursor were re-verified in the current round. */
    cursor: id,
    /** The cursor row's row_hash when it was re-verified. */
    cursorHash: z.string(),
    roundStartedAt: isoTime,
    /** Rows after the cursor were last verified no earlier than this. */
    restVerifiedSince: isoTime,
    lastCycleAt: isoTime,
    /** Rows due in earlier cycles that time did not allow. */
    owed: z.number().int().min(0),
  }),
  /** Verified rows a new transparency root vouches for, still to re-verify: ranges (after, upTo]. */
  pending: z.array(z.tuple([id, id])),
  updatedAt: isoTime,
  /**
   * A pass cut into id ranges that replicas verify (queue configured): the ranges are
   * planned again from these figures; `joined` ranges, from the first, are in lastId.
   */
  ranges: z
    .object({ pass: z.string(), afterId: id, lastId: id, rows: z.number().int().min(0).nullable(), rowsPerRange: z.number().int().min(1), joined: z.number().int().min(0) })
    .optional(),
});

export type ReceiptChainCheckpoint = z.infer<typeof checkpointSchema>;
export type BrokenRowRef = ReceiptChainCheckpoint['broken'][number];
export type ChangedRow = ReceiptChainCheckpoint['changed'][number];
export type UnknownKeyRef = ReceiptChainCheckpoint['unknownKeys'][number];

const pointerSchema = z.object({ version: z.literal(2), chain: identitySchema, key: z.string(), updatedAt: isoTime });
export type DeploymentPointer = z.infer<typeof pointerSchema>;

/** What a stored value turned out to be. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; why: string };

function parse<T>(schema: z.ZodType<T>, v: unknown, what: string): Parsed<T> {
  const version = (v as { version?: unknown } | null)?.version;
  if (version === 1) return { ok: false, why: 'a checkpoint from an older version of the auditor (format 1, kept by deployment name rather than bound to a chain)' };
  if (typeof version === 'number' && version < 2) return { ok: false, why: `the ${what} is from an older version of the auditor (format ${version})` };
  if (typeof version === 'number' && version > 2) return { ok: false, why: `the ${what} is from a newer version of the auditor (format ${version})` };
  const r = schema.safeParse(v);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  return { ok: false, why: `the ${what} is not in the expected format (${issue.path.join('.') || 'top level'}: ${issue.message})` };
}

export const parseCheckpoint = (v: unknown): Parsed<ReceiptChainCheckpoint> => parse(checkpointSchema, v, 'checkpoint');
export const parsePointer = (v: unknown): Parsed<DeploymentPointer> => parse(pointerSchema, v, "deployment's record of its last chain");

/** Where a deployment records the chain it verified last (only for the note when that changes). */
export function pointerKey(deployment: string): string {
  return `receipt-chain:${deployment}`;
}

/**
 * The state key of a chain's checkpoint: readable (database and table) and unique (a hash of
 * server, database and table). The OID and first row are compared inside, so a database
 * rebuilt under the same name finds the old checkpoint, sees it is another chain and replaces it.
 */
export function checkpointKey(c: ChainIdentity): string {
  const h = createHash('sha256')
    .update(JSON.stringify([c.systemIdentifier ?? '', c.database, c.table]))
    .digest('hex')
    .slice(0, 16);
  return `receipt-chain@${c.database}.${c.table}.${h}`;
}

export type IdentityComparison =
  | { kind: 'same' }
  /** The same table, but its first row is gone (the current first row does not start a chain): rows vanished. */
  | { kind: 'start-gone' }
  | { kind: 'different'; what: string };

const q = (s: string) => untrusted.text(s, 64);
const shortHash = (h: string) => `${h.slice(0, 12)}…`;

/**
 * Whether `current` is the chain `earlier` describes. A component that was unknown on either
 * side (no server identity without permission, no first row while empty) does not count.
 * `currentStartsChain`: the current first row links to 64 zeros (a chain starts there).
 */
export function compareIdentity(earlier: ChainIdentity, current: ChainIdentity, currentStartsChain: boolean): IdentityComparison {
  const diffs: string[] = [];
  if (earlier.systemIdentifier && current.systemIdentifier && earlier.systemIdentifier !== current.systemIdentifier) {
    diffs.push(`server ${earlier.systemIdentifier} → ${current.systemIdentifier}`);
  }
  if (earlier.database !== current.database || earlier.databaseOid !== current.databaseOid) {
    diffs.push(`database ${q(earlier.database)} (OID ${earlier.databaseOid}) → ${q(current.database)} (OID ${current.databaseOid})`);
  }
  if (earlier.table !== current.table) diffs.push(`table ${q(earlier.table)} → ${q(current.table)}`);
  const firstDiffers =
    earlier.firstRowHash !== null && current.firstRowHash !== null && (earlier.firstRowHash !== current.firstRowHash || earlier.firstRowId !== current.firstRowId);
  if (diffs.length === 0 && firstDiffers) {
    if (!currentStartsChain) return { kind: 'start-gone' };
    diffs.push(`first row ${earlier.firstRowId} (${shortHash(earlier.firstRowHash as string)}) → ${current.firstRowId} (${shortHash(current.firstRowHash as string)})`);
  }
  return diffs.length === 0 ? { kind: 'same' } : { kind: 'different', what: diffs.join(', ') };
}

/** The identity as evidence: bounded text. */
export function identityEvidence(c: ChainIdentity): Record<string, string | number | null> {
  return {
    server: c.systemIdentifier,
    database: q(c.database),
    databaseOid: c.databaseOid,
    table: q(c.table),
    firstRowId: c.firstRowId,
    firstRowHash: c.firstRowHash,
  };
}
