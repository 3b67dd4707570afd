/**
 * The audit chain verifies: every row's prev_hash is the previous row's row_hash, its
 * row_hash is SHA-256(prev_hash + canonical row), its signature verifies under the key it
 * names (current or historical), and every transparency root vouches for the row it names.
 * Seed 004: "Post-rotation, verify the chain to confirm the rotation row is signed and chained".
 *
 * Incremental: a checkpoint (last verified row and its hash) lets the next run stream only
 * newer rows. Broken rows found earlier are re-verified and re-reported every run, so a
 * finding lasts as long as its cause. If the checkpoint row itself changed, the run falls
 * back to a full pass and reports the change.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import type { AuditRow, RootRow, SigningKeyHolder, StateStore } from '../src/core/sources';
import type { Evidence } from '../src/core/types';
import { GENESIS_HASH, ROW_HASH_RE, expectedRowHash } from './lib/canonical';
import { KeyRing, verifierBackend } from './lib/ed25519';
import { shortFingerprint } from './lib/keys';

type RowProblemKind = 'chainBreak' | 'hashMismatch' | 'badSignature';
/** When a row has several problems, the finding names the most fundamental one. */
const PRIORITY: readonly RowProblemKind[] = ['chainBreak', 'hashMismatch', 'badSignature'];

interface RowProblem {
  kind: RowProblemKind;
  detail: string;
}

interface BrokenRow {
  id: number;
  /** The row before it in the chain when it was verified (null: the first row). */
  prevId: number | null;
}

interface BrokenRowReport extends BrokenRow {
  createdAt: string;
  action: string;
  keyFingerprint: string;
  problems: RowProblem[];
}

interface UnknownKey {
  fingerprint: string;
  rows: number;
  firstId: number;
  lastId: number;
}

/** A checkpointed row whose hash changed (or that vanished) after it was verified. */
interface ChangedRow {
  id: number;
  /** The hash it had when verified. */
  hash: string;
}

/** Stored in the auditor's state under `receipt-chain:<deployment>`. Public chain data only. */
export interface ReceiptChainCheckpoint {
  version: 1;
  lastId: number;
  lastRowHash: string;
  lastRootId: number;
  broken: BrokenRow[];
  /** More rows (or roots) were broken than the checkpoint holds: the next run verifies everything again. */
  overflow: boolean;
  unknownKeys: UnknownKey[];
  brokenRoots: number[];
  changed: ChangedRow[];
  verifiedTotal: number;
  updatedAt: string;
}

function isCheckpoint(v: unknown): v is ReceiptChainCheckpoint {
  const c = v as Partial<ReceiptChainCheckpoint> | undefined;
  return (
    !!c &&
    c.version === 1 &&
    Number.isSafeInteger(c.lastId) &&
    typeof c.lastRowHash === 'string' &&
    Number.isSafeInteger(c.lastRootId) &&
    Array.isArray(c.broken) &&
    Array.isArray(c.unknownKeys) &&
    Array.isArray(c.brokenRoots) &&
    Array.isArray(c.changed)
  );
}

const MAX_CHANGED = 20;

export default defineCheck({
  meta: {
    id: 'receipt-chain',
    title: 'The audit receipt chain and its transparency roots verify',
    description:
      'Recomputes the hash chain of the audit log and verifies every row signature under the current or a historical receipt key, and every transparency root under the root key, incrementally from a checkpoint. A pass proves no receipt was altered, removed or forged since it was written.',
    severity: 'critical',
    sources: ['postgres', 'secrets'],
    schedule: '*/15 * * * *',
    checklist: ['receipt-key-matches-rows'],
    runbook: 'docs/runbooks/receipt-chain.md',
    remediation:
      'Treat a broken chain as a security incident: preserve the database, compare the named rows with backups and the last transparency root, and follow the leak runbook (seed 004) before repairing anything.',
  },
  messages: {
    chainBreak:
      'Audit row {{row}} does not chain: its prev_hash is not the row_hash of {{prevRow}} ({{total}} broken row(s) in the chain; the first is row {{first}}).',
    hashMismatch:
      'Audit row {{row}} was altered: its row_hash is not SHA-256(prev_hash + canonical row) ({{total}} broken row(s) in the chain; the first is row {{first}}).',
    badSignature:
      'The signature of audit row {{row}} does not verify under key {{fingerprint}} ({{total}} broken row(s) in the chain; the first is row {{first}}).',
    unknownKey:
      '{{rows}} audit row(s) (ids {{firstId}}–{{lastId}}) are signed by {{fingerprint}}, which is neither a configured receipt key nor in the historical keys table.',
    rootMismatch: 'Transparency root {{root}} does not vouch for audit row {{upToId}}: {{reason}}.',
    checkpointMismatch: 'Audit row {{row}} changed after it was verified: {{reason}}. The chain was verified again from the start.',
  },
  options: z.object({
    /** Per-row findings reported at most (the total count is in the evidence). */
    maxFindings: z.number().int().positive().max(10_000).default(100),
    /** Rows per batch read from Postgres; memory stays bounded by it. */
    batchSize: z.number().int().positive().max(100_000).default(5000),
  }),
  async run(ctx) {
    const db = ctx.source('postgres');
    const secrets = ctx.source('secrets');
    const { maxFindings, batchSize } = ctx.options;
    const stateKey = `receipt-chain:${ctx.deployment}`;

    // --- keys: current ones from the secret store, old ones from the historical table.
    const [receiptHolders, rootHolders, historical] = await Promise.all([
      secrets.signingKeys('receipt'),
      secrets.signingKeys('root'),
      db.historicalKeys(),
    ]);
    const rowKeys = new KeyRing();
    const rootKeys = new KeyRing();
    const addAll = (ring: KeyRing, pems: string[]) => {
      for (const pem of pems) {
        try {
          ring.addPem(pem);
        } catch {
          // A malformed historical entry is historical-keys' finding; here it just verifies nothing.
        }
      }
    };
    const pemsOf = (hs: SigningKeyHolder[]) => hs.map((h) => h.publicKeyPem);
    addAll(rowKeys, [...pemsOf(receiptHolders), ...historical.map((h) => h.publicKey)]);
    addAll(rootKeys, [...pemsOf(rootHolders), ...historical.map((h) => h.publicKey)]);

    // --- where to start.
    const stored = await ctx.state.get<unknown>(stateKey);
    const cp = isCheckpoint(stored) ? stored : undefined;
    const changed: ChangedRow[] = cp ? [...cp.changed] : [];
    let full = !cp || cp.overflow;
    let fullReason = !cp ? 'no checkpoint' : cp.overflow ? 'too many broken rows to track' : '';
    if (cp && !full && cp.unknownKeys.some((u) => rowKeys.has(u.fingerprint))) {
      full = true;
      fullReason = 'a key that was unknown is now known';
    }
    if (cp && !full && cp.lastId > 0) {
      const row = await db.rowById(cp.lastId);
      if (!row || row.rowHash !== cp.lastRowHash) {
        if (!changed.some((c) => c.id === cp.lastId)) changed.push({ id: cp.lastId, hash: cp.lastRowHash });
        full = true;
        fullReason = `checkpoint row ${cp.lastId} changed`;
      }
    }

    const broken = new BrokenRows(maxFindings);
    const unknown = new Map<string, UnknownKey>();

    const verifyRow = (row: AuditRow, prev: { id: number; rowHash: string } | null): void => {
      const problems: RowProblem[] = [];
      const expectedPrev = prev ? prev.rowHash : GENESIS_HASH;
      if (row.prevHash !== expectedPrev) {
        problems.push({ kind: 'chainBreak', detail: prev ? `prev_hash ${row.prevHash.slice(0, 16)}… ≠ row ${prev.id}'s row_hash ${prev.rowHash.slice(0, 16)}…` : 'the first row must have prev_hash of 64 zeros' });
      }
      const hashOk = ROW_HASH_RE.test(row.rowHash);
      if (!hashOk) problems.push({ kind: 'hashMismatch', detail: 'row_hash is not 64 lowercase hex digits' });
      else if (expectedRowHash(row) !== row.rowHash) problems.push({ kind: 'hashMismatch', detail: 'row_hash does not match the row content' });
      if (hashOk) {
        const outcome = rowKeys.verify(row.keyFingerprint, Buffer.from(row.rowHash, 'hex'), row.signature);
        if (outcome === 'unknown-key') {
          const u = unknown.get(row.keyFingerprint);
          if (u) {
            u.rows++;
            u.firstId = Math.min(u.firstId, row.id);
            u.lastId = Math.max(u.lastId, row.id);
          } else unknown.set(row.keyFingerprint, { fingerprint: row.keyFingerprint, rows: 1, firstId: row.id, lastId: row.id });
        } else if (outcome === 'malformed') problems.push({ kind: 'badSignature', detail: 'signature is not 64 bytes of base64' });
        else if (outcome === 'invalid') problems.push({ kind: 'badSignature', detail: `signature does not verify under ${row.keyFingerprint}` });
      }
      if (problems.length > 0) broken.add(row, prev ? prev.id : null, problems);
    };

    // --- rows verified earlier and found broken: verify them again (incremental runs only;
    // a full pass meets them in the stream).
    if (cp && !full) {
      for (const u of cp.unknownKeys) unknown.set(u.fingerprint, { ...u });
      for (const b of cp.broken) {
        const row = await db.rowById(b.id);
        const prev = b.prevId === null ? undefined : await db.rowById(b.prevId);
        if (!row || (b.prevId !== null && !prev)) {
          full = true;
          fullReason = `broken row ${b.id} or its predecessor vanished`;
          break;
        }
        verifyRow(row, prev ? { id: prev.id, rowHash: prev.rowHash } : null);
      }
      if (full) {
        broken.reset();
        unknown.clear();
      }
    }
    if (full) ctx.logger.info({ reason: fullReason, backend: verifierBackend() }, 'Verifying the whole receipt chain');

    // --- roots to check this run: new ones, and the ones found broken before.
    const startRootAfter = full || !cp ? 0 : Math.min(cp.lastRootId, ...cp.brokenRoots.map((id) => id - 1));
    const knownBrokenRoots = new Set(full || !cp ? [] : cp.brokenRoots);
    const roots = (await db.rootsAfter(startRootAfter)).filter((r) => full || !cp || r.id > cp.lastRootId || knownBrokenRoots.has(r.id));
    const rootTargets = new Map<number, string | undefined>();
    for (const r of roots) rootTargets.set(r.upToId, undefined);

    // --- stream the rows after the checkpoint.
    const startAfter = full || !cp ? 0 : cp.lastId;
    let prev: { id: number; rowHash: string } | null = full || !cp || cp.lastId === 0 ? null : { id: cp.lastId, rowHash: cp.lastRowHash };
    let verified = 0;
    let aborted = false;
    stream: for await (const batch of db.streamRows(startAfter, { batchSize, signal: ctx.signal })) {
      for (const row of batch) {
        if (ctx.signal.aborted) {
          aborted = true;
          break stream;
        }
        verifyRow(row, prev);
        if (rootTargets.has(row.id)) rootTargets.set(row.id, row.rowHash);
        prev = { id: row.id, rowHash: row.rowHash };
        verified++;
      }
    }
    // Sources end the stream quietly when the signal aborts: an early end is not the end of the chain.
    if (ctx.signal.aborted) aborted = true;
    ctx.measure('receipt_rows_verified', verified, 'Audit rows whose hash chain and signature this run verified');

    const next: ReceiptChainCheckpoint = {
      version: 1,
      lastId: prev ? prev.id : 0,
      lastRowHash: prev ? prev.rowHash : '',
      lastRootId: full || !cp ? 0 : cp.lastRootId,
      broken: broken.stored(),
      overflow: broken.total > broken.kept,
      unknownKeys: [...unknown.values()],
      brokenRoots: [],
      changed: [],
      verifiedTotal: (full || !cp ? 0 : cp.verifiedTotal) + verified,
      updatedAt: ctx.now().toISOString(),
    };
    if (aborted) {
      // Keep the progress: every row up to `prev` is verified, so the next run continues from there.
      next.changed = changed.slice(-MAX_CHANGED);
      next.brokenRoots = cp && !full ? cp.brokenRoots : [];
      await save(ctx.state, stateKey, next);
      return;
    }

    // --- transparency roots.
    const brokenRoots: number[] = [];
    for (const root of roots) {
      if (ctx.signal.aborted) return;
      next.lastRootId = Math.max(next.lastRootId, root.id);
      let target = rootTargets.get(root.upToId);
      if (target === undefined) target = (await db.rowById(root.upToId))?.rowHash;
      const reason = rootProblem(root, target, rootKeys);
      if (!reason) continue;
      // A broken root the checkpoint cannot remember would not be re-checked next run.
      if (brokenRoots.length < maxFindings) brokenRoots.push(root.id);
      else next.overflow = true;
      ctx.report({
        messageId: 'rootMismatch',
        data: { root: root.id, upToId: root.upToId, reason },
        resource: resource({ root: root.id }),
        evidence: {
          root: root.id,
          createdAt: root.createdAt.toISOString(),
          upToId: root.upToId,
          rootHash: root.rootHash,
          rowHash: target ?? null,
          keyFingerprint: root.keyFingerprint,
          problem: reason,
        },
      });
    }
    next.brokenRoots = brokenRoots;

    // --- rows that changed after being verified: reported while they differ.
    const brokenIds = new Set(broken.stored().map((b) => b.id));
    for (const c of changed) {
      const row = await db.rowById(c.id);
      if (row && row.rowHash === c.hash) continue;
      next.changed.push(c);
      const reason = row ? `its row_hash was ${c.hash.slice(0, 16)}… when verified and is now ${row.rowHash.slice(0, 16)}…` : 'it no longer exists';
      if (brokenIds.has(c.id)) {
        broken.note(c.id, reason);
        continue;
      }
      ctx.report({
        messageId: 'checkpointMismatch',
        data: { row: c.id, reason },
        resource: resource({ row: c.id }),
        evidence: { row: c.id, verifiedHash: c.hash, currentHash: row ? row.rowHash : null, exists: !!row },
      });
    }
    next.changed = next.changed.slice(-MAX_CHANGED);

    // --- per-row findings, capped; every one names the first broken row and the total.
    const first = broken.firstId;
    for (const b of broken.reports()) {
      const kind = PRIORITY.find((k) => b.problems.some((p) => p.kind === k)) as RowProblemKind;
      const evidence: Evidence = {
        row: b.id,
        createdAt: b.createdAt,
        action: b.action,
        keyFingerprint: b.keyFingerprint,
        previousRow: b.prevId,
        problems: b.problems.map((p) => ({ kind: p.kind, detail: p.detail })),
        firstBrokenRow: first ?? b.id,
        brokenRowsTotal: broken.total,
        reportedRows: broken.kept,
      };
      if (b.note) evidence.changedSinceVerified = b.note;
      ctx.report({
        messageId: kind,
        data: {
          row: b.id,
          prevRow: b.prevId === null ? 'nothing (it is the first row; expected 64 zeros)' : `row ${b.prevId}`,
          fingerprint: shortFingerprint(b.keyFingerprint),
          total: broken.total,
          first: first ?? b.id,
        },
        resource: resource({ row: b.id }),
        evidence,
      });
    }

    for (const u of [...unknown.values()].sort((a, b) => a.firstId - b.firstId)) {
      ctx.report({
        messageId: 'unknownKey',
        data: { rows: u.rows, firstId: u.firstId, lastId: u.lastId, fingerprint: shortFingerprint(u.fingerprint) },
        resource: resource({ fingerprint: u.fingerprint }),
        evidence: { fingerprint: u.fingerprint, rows: u.rows, firstRow: u.firstId, lastRow: u.lastId, knownFingerprints: rowKeys.fingerprints() },
      });
    }

    await save(ctx.state, stateKey, next);
  },
});

async function save(state: StateStore, key: string, cp: ReceiptChainCheckpoint): Promise<void> {
  await state.set(key, cp);
}

function rootProblem(root: RootRow, target: string | undefined, keys: KeyRing): string | undefined {
  if (target === undefined) return `row ${root.upToId} does not exist`;
  if (root.rootHash !== target) return `its root_hash is not row ${root.upToId}'s row_hash`;
  if (!ROW_HASH_RE.test(root.rootHash)) return 'its root_hash is not 64 lowercase hex digits';
  const outcome = keys.verify(root.keyFingerprint, Buffer.from(root.rootHash, 'hex'), root.signature);
  if (outcome === 'unknown-key') return `it is signed by ${shortFingerprint(root.keyFingerprint)}, which is neither a configured root key nor in the historical keys table`;
  if (outcome === 'malformed') return 'its signature is not 64 bytes of base64';
  if (outcome === 'invalid') return `its signature does not verify under ${shortFingerprint(root.keyFingerprint)}`;
  return undefined;
}

/** Broken rows of one run: all counted, the first `cap` (by id) kept for findings and the checkpoint. */
class BrokenRows {
  total = 0;
  firstId: number | undefined;
  readonly #cap: number;
  #rows: (BrokenRowReport & { note?: string })[] = [];

  constructor(cap: number) {
    this.#cap = cap;
  }

  get kept(): number {
    return this.#rows.length;
  }

  add(row: AuditRow, prevId: number | null, problems: RowProblem[]): void {
    this.total++;
    if (this.firstId === undefined || row.id < this.firstId) this.firstId = row.id;
    // Rows arrive in id order, except re-verified known rows, which all precede the stream.
    if (this.#rows.length >= this.#cap) return;
    this.#rows.push({ id: row.id, prevId, createdAt: row.createdAt.toISOString(), action: row.action, keyFingerprint: row.keyFingerprint, problems });
  }

  note(id: number, note: string): void {
    const r = this.#rows.find((x) => x.id === id);
    if (r) r.note = note;
  }

  reset(): void {
    this.total = 0;
    this.firstId = undefined;
    this.#rows = [];
  }

  stored(): BrokenRow[] {
    return this.#rows.map((r) => ({ id: r.id, prevId: r.prevId }));
  }

  reports(): (BrokenRowReport & { note?: string })[] {
    return [...this.#rows].sort((a, b) => a.id - b.id);
  }
}
