/**
 * The audit chain verifies: every row's prev_hash is the previous row's row_hash, its
 * row_hash is SHA-256(prev_hash + RFC 8785 canonical row), its signature verifies under the
 * key it names (current or historical), and every transparency root vouches for the row it
 * names. Aegis *Secret Management*, "What to do if you suspect a secret leak": "Post-rotation,
 * verify the chain to confirm the rotation row is signed and chained".
 *
 * Over time (DESIGN.md "Judging over time"):
 * - Incremental: a checkpoint, bound to the identity of the chain (server, database, table,
 *   first row), lets a run read only newer rows. Another chain behind the same deployment is
 *   verified from the start with a note — never a tamper finding, never a skipped row.
 * - Resumable: rows are read in keyset batches, each its own statement, and the checkpoint
 *   advances as batches are verified (saved every `checkpoint_interval`). A pass cut short by
 *   the check's timeout, a dropped connection or a restart continues where it stopped, and
 *   the result says how far it came. Rows not yet verified are never a pass.
 * - Rolling: every run re-verifies a slice of the rows verified before, sized by the time
 *   since the last run so that every row is re-verified within `rehash_period`, and every
 *   row a new transparency root vouches for. A row altered after it was verified is found
 *   within that period; rows that vanished are findings.
 * Broken rows found earlier are re-verified and re-reported every run, so a finding lasts
 * as long as its cause.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { AuditError, ErrorCodes, isAuditError } from '../src/core/errors';
import { duration, formatDuration } from '../src/core/duration';
import { resource } from '../src/core/finding';
import type { AuditDb, AuditRow, ChainExtent, HistoricalKey, RawAuditRows, RootRow, SecretStore, SigningKeyHolder, StreamRowsOptions } from '../src/core/sources';
import type { CheckContext, PartContext, SharedWork } from '../src/core/define-check';
import { joinRanges, planRanges, verifyRange, type ChainRange, type JoinedRanges, type RangeResult } from './lib/chain-ranges';
import type { Evidence } from '../src/core/types';
import { GENESIS_HASH, ROW_HASH_RE } from './lib/canonical';
import {
  checkpointKey,
  compareIdentity,
  identityEvidence,
  parseCheckpoint,
  parsePointer,
  pointerKey,
  type ChainIdentity,
  type ChangedRow,
  type ReceiptChainCheckpoint,
} from './lib/chain-checkpoint';
import { PROBLEM_PRIORITY, verifyBatch, type Anchor, type BatchVerdict, type BrokenRowVerdict, type UnknownKeyTally } from './lib/chain-verify';
import { KeyRing, verifierBackend } from './lib/ed25519';
import { ChainVerifier, loadWorkerPool, prestartVerifierPool, verifyStream } from './lib/chain-pipeline';
import { FINGERPRINT_RE, shortFingerprint } from './lib/keys';
import { untrusted } from '../src/core/untrusted';

export type { ReceiptChainCheckpoint } from './lib/chain-checkpoint';

const HOUR = 3_600_000;
const MAX_CHANGED = 20;
const MAX_PENDING = 1000;

/** How long before its deadline a pass stops reading, to check roots, save and report. */
function reserveMs(budgetMs: number): number {
  return Math.min(30_000, Math.max(budgetMs * 0.1, Math.min(1_000, budgetMs * 0.5)));
}

/** 1234567 → "1 234 567". */
function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export default defineCheck({
  meta: {
    id: 'receipt-chain',
    title: 'The audit receipt chain and its transparency roots verify',
    description:
      'Recomputes the hash chain of the audit log and verifies every row signature under the current or a historical receipt key, and every transparency root under the root key, incrementally from a checkpoint bound to the chain, re-verifying every row on a rolling schedule. A pass proves no receipt was altered, removed or forged since it was written.',
    severity: 'critical',
    sources: ['postgres', 'secrets'],
    schedule: '*/15 * * * *',
    // A tampered or broken chain is an integrity incident from the first run that sees it.
    pagesOnFirstFailure: true,
    // A first pass over a million rows takes 70–80 s on an idle 2-core machine and ~9 min when
    // other work keeps both cores busy (bench/receipt-chain.ts); the default run timeout (2 min)
    // would cut it. Just under the */15 schedule, so a cycle never queues behind the last one.
    // Progress is kept either way: a longer pass resumes next run.
    timeout: 14 * 60_000,
    checklist: ['receipt-key-matches-rows'],
    runbook: 'docs/runbooks/receipt-chain.md',
    remediation:
      'Treat a broken chain as a security incident: preserve the database, compare the named rows with backups and the last transparency root, and follow "What to do if you suspect a secret leak" in Secret Management before repairing anything.',
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
    checkpointMismatch: 'Audit row {{row}} changed after it was verified: {{reason}}.',
    chainReplaced:
      'The chain behind this deployment is a different one than last verified ({{change}}); it was verified {{how}}, and nothing recorded for the other chain applies to it.',
    stateReset: 'The receipt-chain checkpoint could not be used ({{reason}}); the chain was verified from the start.',
    incomplete: 'Verification is incomplete: verified {{done}} of {{total}} rows (up to row {{lastId}}); {{cause}}. The rest continues next run.',
    freshness:
      '{{total}} rows verified (up to row {{lastId}}): {{fresh}} new this run and {{reverified}} re-verified; the oldest verification is {{oldest}} old (every row is re-verified within {{period}}).',
  },
  options: z.object({
    /** Per-row findings reported at most (the total count is in the evidence). */
    maxFindings: z.number().int().positive().max(10_000).default(100),
    /** Rows per statement read from Postgres; memory stays bounded by it (with 1000, rows leave memory before they age into V8's old generation: 40 MiB less at peak than 5000, docs/performance.md). */
    batchSize: z.number().int().positive().max(100_000).default(1000),
    /** Every verified row is re-verified (hash, links, signature) within this period. */
    rehash_period: duration()
      .default(24 * HOUR)
      .refine((ms) => ms >= 60_000, 'at least 1m'),
    /** How often a long pass saves its progress (a restart loses at most this much work). */
    checkpoint_interval: duration().default(10_000),
    /** Worker threads verifying signatures (default: one per core; 0: all on the check's own thread). */
    threads: z.number().int().min(0).max(256).optional(),
    /**
     * With replicas sharing work (`queue:`), a pass from the first row over more than this many
     * rows is cut into id ranges of about this many rows that any replica verifies.
     */
    range_rows: z.number().int().min(100).max(100_000_000).default(250_000),
    /** A range still running this long is taken for dead (its replica died) and verified elsewhere. */
    range_timeout: duration()
      .default(10 * 60_000)
      .refine((ms) => ms >= 1_000, 'at least 1s'),
  }),
  part: (ctx, data) => verifyRangePart(ctx, data),
  preload() {
    verifierBackend();
    loadWorkerPool();
  },
  async run(ctx) {
    const startedMs = Date.now();
    // A first pass (or one left unfinished) is about to verify many rows: its worker threads
    // start first, and start up on the other cores while this one loads the Postgres client
    // and reads the keys and the chain's identity.
    const started = (await passLikely(ctx)) ? prestartVerifierPool({ threads: ctx.options.threads }) : undefined;
    /** The pass's verifier, closed in the finally whatever happens (closing twice is harmless). */
    let passVerifier: ChainVerifier | undefined;
    try {
      const db = ctx.source('postgres');
      // The keys' secrets are read while the database is; the database's reads go one after
      // another, on one connection that the pass then streams on. Read at once, they opened a
      // connection each — each a server process started (about 25 ms of the server's CPU, on a
      // pass's cores where it shares the machine) and a TLS handshake where there is TLS — for
      // queries of under a millisecond. Failures are met where they are awaited, in this order.
      const historicalRead = db.historicalKeys();
      const keysRead = loadKeys(historicalRead, ctx.source('secrets'));
      const identityRead = historicalRead
        .catch(() => undefined)
        .then(async () => {
          const location = await db.chainLocation();
          return [location, await db.firstRow()] as const;
        });
      keysRead.catch(() => undefined);
      identityRead.catch(() => undefined);
      const o = ctx.options;
      const stopAt = ctx.deadline - reserveMs(ctx.deadline - startedMs);
      const timeUp = () => ctx.signal.aborted || Date.now() >= stopAt;
      const now = ctx.now();
      const nowIso = now.toISOString();

      // --- keys: current ones from the secret store, old ones from the historical table.
      const { rowKeys, rootKeys } = await keysRead;

      // --- which chain this is, and what was recorded about it.
      const [location, first] = await identityRead;
      const identity: ChainIdentity = { ...location, firstRowId: first?.id ?? null, firstRowHash: first?.rowHash ?? null };
      if (identity.systemIdentifierUnavailable) ctx.logger.warn({ why: identity.systemIdentifierUnavailable }, 'Chain identity without the server identity');
      const startsChain = !first || first.prevHash === GENESIS_HASH;
      const key = checkpointKey(identity);
      const chainResource = resource({ chain: untrusted.id(`${identity.database}/${identity.table}`) });
      const notes: { messageId: 'chainReplaced' | 'stateReset'; data: Record<string, string>; evidence: Evidence }[] = [];
      const changed: ChangedRow[] = [];
      const addChanged = (c: ChangedRow) => {
        if (!changed.some((x) => x.id === c.id)) changed.push(c);
      };

      let lastChain: ChainIdentity | undefined;
      /** What was wrong with the deployment's record; said only if the chain is verified from the start because of it. */
      let pointerProblem: string | undefined;
      const pointer = await ctx.state.read<unknown>(pointerKey(ctx.deployment));
      if (pointer.status === 'ok') {
        const p = parsePointer(pointer.value);
        // A version-1 checkpoint lived under the deployment's name.
        if (p.ok) lastChain = p.value.chain;
        else pointerProblem = p.why;
      } else if (pointer.status === 'unreadable') pointerProblem = pointer.reason;

      let cp: ReceiptChainCheckpoint | undefined;
      let replaced: string | undefined;
      let full = false;
      let fullReason = '';
      const stored = await ctx.state.read<unknown>(key);
      if (stored.status === 'ok') {
        const parsed = parseCheckpoint(stored.value);
        if (!parsed.ok) notes.push({ messageId: 'stateReset', data: { reason: parsed.why }, evidence: { stateKey: key, problem: parsed.why } });
        else {
          const cmp = compareIdentity(parsed.value.identity, identity, startsChain);
          if (cmp.kind === 'different') replaced = cmp.what;
          else {
            cp = parsed.value;
            for (const c of cp.changed) addChanged(c);
            if (cmp.kind === 'start-gone' && cp.identity.firstRowId !== null && cp.identity.firstRowHash !== null) {
              addChanged({ id: cp.identity.firstRowId, hash: cp.identity.firstRowHash });
              full = true;
              fullReason = `the first row ${cp.identity.firstRowId} is gone`;
            }
          }
        }
      } else if (stored.status === 'unreadable') {
        notes.push({ messageId: 'stateReset', data: { reason: stored.reason }, evidence: { stateKey: key, problem: stored.reason } });
      }
      if (replaced === undefined && lastChain) {
        const cmp = compareIdentity(lastChain, identity, startsChain);
        if (cmp.kind === 'different') replaced = cmp.what;
      }

      // --- where to start.
      if (!cp && pointerProblem !== undefined && replaced === undefined) {
        notes.push({ messageId: 'stateReset', data: { reason: pointerProblem }, evidence: { stateKey: pointerKey(ctx.deployment), problem: pointerProblem } });
      }
      if (!cp) {
        full = true;
        fullReason = replaced ? 'another chain' : notes.length ? 'unusable checkpoint' : 'no checkpoint for this chain';
      } else if (ctx.full) {
        full = true;
        fullReason = 'a full pass was asked for';
      } else if (cp.overflow) {
        full = true;
        fullReason = 'too many broken rows to track';
      } else if (cp.unknownKeys.some((u) => rowKeys.has(u.fingerprint))) {
        full = true;
        fullReason = 'a key that was unknown is now known';
      }
      if (cp && !full && cp.lastId > 0) {
        const row = await db.rowById(cp.lastId);
        if (!row || row.rowHash !== cp.lastRowHash) {
          addChanged({ id: cp.lastId, hash: cp.lastRowHash });
          full = true;
          fullReason = `checkpoint row ${cp.lastId} changed`;
        }
      }

      const broken = new BrokenRows(o.maxFindings);
      const unknown = new Map<string, UnknownKeyTally>();
      /** Merges a verdict: broken rows always; unknown-key tallies only from a row's first verification. */
      const take = (v: BatchVerdict, firstTime: boolean) => {
        for (const b of v.broken) broken.add(b);
        if (!firstTime) return;
        for (const u of v.unknownKeys) {
          const t = unknown.get(u.fingerprint);
          if (!t) unknown.set(u.fingerprint, { ...u });
          else {
            t.rows += u.rows;
            t.firstId = Math.min(t.firstId, u.firstId);
            t.lastId = Math.max(t.lastId, u.lastId);
          }
        }
      };
      const anchorOf = (r: AuditRow | undefined): Anchor => (r ? { id: r.id, rowHash: r.rowHash } : undefined);

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
          take(verifyBatch([row], b.prevId === null ? null : anchorOf(prev), rowKeys), false);
        }
        if (full) {
          broken.reset();
          unknown.clear();
        }
      }
      if (full) ctx.logger.info({ reason: fullReason, backend: verifierBackend() }, 'Verifying the whole receipt chain');

      // The checkpoint this run builds; saved as it advances.
      const base: ReceiptChainCheckpoint =
        cp && !full
          ? structuredClone(cp)
          : {
              version: 2,
              identity,
              lastId: 0,
              lastRowHash: '',
              lastRootId: 0,
              rootUpToId: 0,
              broken: [],
              overflow: false,
              unknownKeys: [],
              brokenRoots: [],
              changed: [],
              verifiedTotal: 0,
              passStartedAt: nowIso,
              passComplete: false,
              rehash: { cursor: 0, cursorHash: '', roundStartedAt: nowIso, restVerifiedSince: nowIso, lastCycleAt: nowIso, owed: 0 },
              pending: [],
              updatedAt: nowIso,
            };
      const next: ReceiptChainCheckpoint = { ...base, identity };
      const verifiedBefore = next.lastId;
      const save = async () => {
        next.broken = broken.stored();
        next.overflow = next.overflow || broken.overflowed;
        next.unknownKeys = [...unknown.values()];
        next.changed = changed.slice(-MAX_CHANGED);
        next.updatedAt = nowIso;
        await ctx.state.set(key, next);
        await ctx.state.set(pointerKey(ctx.deployment), { version: 2, chain: identity, key, updatedAt: nowIso });
      };
      let lastSave = Date.now();
      const saveNowAndThen = async () => {
        if (Date.now() - lastSave < o.checkpoint_interval) return;
        await save();
        lastSave = Date.now();
      };

      // Roots to check this run: new ones, and the ones found broken before. Until the first pass
      // is complete its roots are checked as in one pass: no row is re-verified for a root that
      // was there before the pass began.
      const incremental = !!cp && !full && cp.passComplete;
      const seenRootId = next.lastRootId;
      let roots: RootRow[] = [];
      /** The hashes of the rows the roots name, as this pass reads them (only those: memory stays flat). */
      const rootTargets = new Map<number, string>();

      // --- 1. the rows after the checkpoint, in keyset batches, signatures verified on every core.
      const verifier = (passVerifier = new ChainVerifier(rowKeys, { threads: o.threads, pool: started }));
      // The total of the progress a long pass shows (rows, rows/s, ETA): the ids after the
      // checkpoint, from one index probe — ids are unique and rising, so the rows ahead are at
      // most that many, exactly that many when the ids have no gaps. Counting the rows instead is
      // a scan of its own (about 130 ms of the server's CPU at 100 000 rows of a table not yet
      // vacuumed, 0.9 s at a million, on the cores of the pass), which, bounded to a second, left
      // a long pass on a busy server without its ETA.
      let ahead: ChainExtent | undefined;
      // With replicas sharing work, whether the pass is cut into ranges depends on the count.
      if (ctx.shared) ahead = await db.chainExtent(next.lastId, { timeoutMs: 1_000 }).catch(() => undefined);
      // A pass cut into ranges is verified by the replicas' own verifiers: this one's workers start only when rows come here.
      const ranged = !!ctx.shared && (next.ranges !== undefined || (next.lastId === 0 && (ahead?.rowsAfter ?? 0) > o.range_rows));
      let idsAhead: number | undefined;
      if (!ranged) {
        const known = ahead ?? (await db.chainExtent(next.lastId, { count: false }).catch(() => undefined));
        if (known?.lastId != null) idsAhead = Math.max(0, known.lastId - next.lastId);
        // Enough rows coming start the workers now.
        verifier.expect(known?.rowsAfter ?? idsAhead ?? 0);
      }
      let progressed = 0;
      const advance = (rows: number) => {
        progressed += rows;
        const total = ahead?.rowsAfter ?? idsAhead;
        ctx.progress(progressed, total === undefined ? undefined : Math.max(total, progressed));
      };
      let interruption: unknown;
      let reachedEnd = true;
      let fresh = 0;
      /** A pass cut into ranges still waiting for some of them: why, for the report. */
      let rangesWaiting: string | undefined;
      if (!ctx.shared) next.ranges = undefined;
      else {
        try {
          rangesWaiting = await rangedPass(ctx.shared, {
            db,
            next,
            key,
            nowIso,
            rowsAhead: ahead,
            rowsPerRange: o.range_rows,
            rangeTimeoutMs: o.range_timeout,
            cap: o.maxFindings,
            timeUp,
            signal: ctx.signal,
            save,
            onJoined: (joined) => {
              for (const b of joined.broken) broken.add(b);
              broken.uncounted(joined.brokenTotal - joined.broken.length);
              take({ rows: joined.rows, broken: [], unknownKeys: joined.unknownKeys, last: undefined }, true);
              fresh += joined.rows;
              advance(joined.rows);
            },
            wantsAction: () => broken.kept < o.maxFindings,
          });
        } catch (e) {
          interruption = e;
        }
        if (rangesWaiting !== undefined || interruption) reachedEnd = false;
      }
      if (reachedEnd) try {
        const startRootAfter = incremental ? Math.min(seenRootId, ...next.brokenRoots.map((r) => r - 1)) : 0;
        const knownBroken = new Set(incremental ? next.brokenRoots : []);
        roots = (await db.rootsAfter(startRootAfter)).filter((r) => !incremental || r.id > seenRootId || knownBroken.has(r.id));
        const wanted = new Set(roots.map((r) => r.upToId));
        const anchor: Anchor = next.lastId === 0 ? null : { id: next.lastId, rowHash: next.lastRowHash };
        await verifyStream(rowsOf(db, next.lastId, { batchSize: o.batchSize, signal: ctx.signal }), anchor, verifier, async (v) => {
          take(v, true);
          for (const [id, hash] of v.targets) rootTargets.set(id, hash);
          const last = v.last as { id: number; rowHash: string };
          next.lastId = last.id;
          next.lastRowHash = last.rowHash;
          next.verifiedTotal += v.rows;
          fresh += v.rows;
          advance(v.rows);
          if (timeUp()) {
            reachedEnd = false;
            return false;
          }
          await saveNowAndThen();
          return true;
        }, wanted);
      } catch (e) {
        reachedEnd = false;
        interruption = e;
      }
      // --- 2. transparency roots.
      const brokenRootReports: { root: RootRow; target: string | undefined; reason: string }[] = [];
      let rootsDone = false;
      if (reachedEnd && !interruption) {
        try {
          const brokenRoots: number[] = [];
          for (const root of roots) {
            const isNew = root.id > seenRootId;
            next.lastRootId = Math.max(next.lastRootId, root.id);
            let target = rootTargets.get(root.upToId);
            if (target === undefined) target = (await db.rowById(root.upToId))?.rowHash;
            // Rows a new root vouches for that were verified in an earlier run are verified again.
            if (incremental && isNew && root.upToId > next.rootUpToId) {
              const upTo = Math.min(root.upToId, verifiedBefore);
              if (upTo > next.rootUpToId) addPending(next, next.rootUpToId, upTo);
            }
            if (isNew) next.rootUpToId = Math.max(next.rootUpToId, Math.min(root.upToId, next.lastId));
            const reason = rootProblem(root, target, rootKeys);
            if (!reason) continue;
            // A broken root the checkpoint cannot remember would not be re-checked next run.
            if (brokenRoots.length < o.maxFindings) brokenRoots.push(root.id);
            else next.overflow = true;
            brokenRootReports.push({ root, target, reason });
          }
          next.brokenRoots = brokenRoots;
          rootsDone = true;
        } catch (e) {
          interruption = e;
        }
      }

      // --- 3. verified rows a new root vouches for, then 4. the rolling slice.
      let reverified = 0;
      if (rootsDone) {
        try {
          const again = (v: BatchVerdict) => {
            take(v, false);
            advance(v.rows);
          };
          reverified += await reverifyPending(db, next, o.batchSize, verifier, timeUp, again, addChanged, ctx.signal);
          reverified += await rollingSlice(db, next, { now, periodMs: o.rehash_period, batchSize: o.batchSize, verifier, timeUp, take: again, addChanged, signal: ctx.signal });
        } catch (e) {
          interruption = e;
        }
      }
      await verifier.close();
      const complete = reachedEnd && rootsDone && !interruption;
      if (reachedEnd && rootsDone) next.passComplete = true;
      await save();

      // --- rows that changed after being verified: reported while they differ.
      const changedReports: { c: ChangedRow; row: AuditRow | undefined }[] = [];
      const stillChanged: ChangedRow[] = [];
      for (const c of changed) {
        const row = await db.rowById(c.id).catch((e: unknown) => {
          interruption ??= e;
          return undefined;
        });
        if (row && row.rowHash === c.hash) continue;
        stillChanged.push(c);
        changedReports.push({ c, row });
      }
      if (stillChanged.length !== changed.length && !interruption) {
        changed.splice(0, changed.length, ...stillChanged);
        await save();
      }

      // --- how far verification came, when it did not finish.
      let unverified = 0;
      let progress: { done: string; total: string; lastId: number; cause: string } | undefined;
      if (!complete) {
        const extent = await db.chainExtent(next.lastId).catch(() => undefined);
        unverified = extent?.rowsAfter ?? 0;
        const failure = isAuditError(interruption) ? interruption.message : String((interruption as Error)?.message ?? interruption);
        const cause = rangesWaiting !== undefined && !interruption
          ? rangesWaiting
          : interruption
          ? reachedEnd && rootsDone
            ? `every row was verified, but re-verifying older rows stopped: ${failure}`
            : failure
          : `the check's time ran out after ${formatDuration(Date.now() - startedMs)} (timeout ${formatDuration(ctx.deadline - startedMs)}; checks.receipt-chain.timeout)`;
        progress = {
          done: count(next.verifiedTotal),
          total: extent?.rowsAfter === null || extent === undefined ? `at least ${count(next.verifiedTotal)}` : count(next.verifiedTotal + (extent.rowsAfter ?? 0)),
          lastId: next.lastId,
          cause,
        };
      }
      const oldestMs = oldestVerificationAge(next, now);
      ctx.measure('receipt_rows_verified', fresh, 'Audit rows verified for the first time by this run');
      ctx.measure('receipt_rows_reverified', reverified, 'Audit rows verified before and verified again by this run (rolling re-verification, rows a new root vouches for)');
      ctx.measure('receipt_chain_verified_rows', next.verifiedTotal, 'Audit rows of the chain verified so far (up to the checkpoint)');
      ctx.measure('receipt_rows_unverified', unverified, 'Audit rows after the checkpoint not yet verified (a pass that continues next run)');
      ctx.measure('receipt_oldest_verification_age_seconds', Math.round(oldestMs / 1000), 'Age of the oldest verification of any row of the chain');

      // --- findings.
      for (const n of notes) ctx.report({ messageId: n.messageId, data: n.data, resource: chainResource, evidence: n.evidence, severity: 'info' });
      if (replaced !== undefined) {
        ctx.report({
          messageId: 'chainReplaced',
          data: { change: replaced, how: cp && !full ? `from its own checkpoint (last saved ${cp.updatedAt})` : 'from the start' },
          resource: chainResource,
          evidence: { change: replaced, current: identityEvidence(identity), previous: lastChain ? identityEvidence(lastChain) : null },
          severity: 'info',
        });
      }

      for (const { root, target, reason } of brokenRootReports) {
        ctx.report({
          messageId: 'rootMismatch',
          data: { root: root.id, upToId: root.upToId, reason },
          resource: resource({ root: root.id }),
          evidence: {
            root: root.id,
            createdAt: root.createdAt.toISOString(),
            upToId: root.upToId,
            rootHash: untrusted.matching(root.rootHash, ROW_HASH_RE),
            rowHash: target === undefined ? null : untrusted.shaped(target, ROW_HASH_RE),
            keyFingerprint: fingerprintShown(root.keyFingerprint),
            problem: reason,
          },
        });
      }

      const brokenIds = new Set(broken.stored().map((b) => b.id));
      for (const { c, row } of changedReports) {
        const now16 = row ? untrusted.matching(row.rowHash, ROW_HASH_RE) : '';
        const reason = row ? `its row_hash was ${c.hash.slice(0, 16)}… when verified and is now ${ROW_HASH_RE.test(now16) ? `${now16.slice(0, 16)}…` : now16}` : 'it no longer exists';
        if (brokenIds.has(c.id)) {
          broken.note(c.id, reason);
          continue;
        }
        ctx.report({
          messageId: 'checkpointMismatch',
          data: { row: c.id, reason },
          resource: resource({ row: c.id }),
          evidence: { row: c.id, verifiedHash: c.hash, currentHash: row ? untrusted.matching(row.rowHash, ROW_HASH_RE) : null, exists: !!row },
        });
      }

      // Per-row findings, capped; every one names the first broken row and the total.
      const firstBroken = broken.firstId;
      for (const b of broken.reports()) {
        const kind = PROBLEM_PRIORITY.find((k) => b.problems.some((p) => p.kind === k)) ?? 'hashMismatch';
        const evidence: Evidence = {
          row: b.id,
          createdAt: b.createdAt,
          action: untrusted.text(b.action, 64),
          keyFingerprint: fingerprintShown(b.keyFingerprint),
          previousRow: b.prevId ?? null,
          problems: b.problems.map((p) => ({ kind: p.kind, detail: p.detail })),
          firstBrokenRow: firstBroken ?? b.id,
          brokenRowsTotal: broken.total,
          reportedRows: broken.kept,
        };
        if (b.note) evidence.changedSinceVerified = b.note;
        ctx.report({
          messageId: kind,
          data: {
            row: b.id,
            prevRow: b.prevId === null ? 'nothing (it is the first row; expected 64 zeros)' : `row ${b.prevId}`,
            fingerprint: shortFingerprint(fingerprintShown(b.keyFingerprint)),
            total: broken.total,
            first: firstBroken ?? b.id,
          },
          resource: resource({ row: b.id }),
          evidence,
        });
      }

      for (const u of [...unknown.values()].sort((a, b) => a.firstId - b.firstId)) {
        const fp = fingerprintShown(u.fingerprint);
        ctx.report({
          messageId: 'unknownKey',
          data: { rows: u.rows, firstId: u.firstId, lastId: u.lastId, fingerprint: shortFingerprint(fp) },
          // A malformed fingerprint still names its own finding: distinct values stay distinct.
          resource: resource({ fingerprint: untrusted.shaped(u.fingerprint, FINGERPRINT_RE) }),
          evidence: { fingerprint: fp, rows: u.rows, firstRow: u.firstId, lastRow: u.lastId, knownFingerprints: rowKeys.fingerprints() },
        });
      }

      if (progress) {
        // Findings in the rows verified so far stand; without any, rows not yet verified are no pass.
        const failing = broken.total > 0 || unknown.size > 0 || brokenRootReports.length > 0 || changedReports.length > 0;
        const text = `receipt-chain: verification is incomplete: verified ${progress.done} of ${progress.total} rows (up to row ${progress.lastId}); ${progress.cause}. The rest continues next run.`;
        if (!failing) {
          // A source that failed is named (source_up, source_errors_total); running out of time is no source's fault.
          const source = isAuditError(interruption) ? interruption : undefined;
          throw new AuditError(source?.code ?? ErrorCodes.TIMEOUT, text, { source: source?.source, reason: source?.reason ?? 'timeout' });
        }
        ctx.report({
          messageId: 'incomplete',
          data: { done: progress.done, total: progress.total, lastId: progress.lastId, cause: progress.cause },
          resource: chainResource,
          evidence: { verifiedRows: next.verifiedTotal, lastVerifiedRow: next.lastId, unverifiedRows: unverified, cause: progress.cause },
          severity: 'info',
        });
        return;
      }

      ctx.report({
        messageId: 'freshness',
        data: {
          total: count(next.verifiedTotal),
          lastId: next.lastId,
          fresh: count(fresh),
          reverified: count(reverified),
          oldest: oldestMs < 1000 ? 'under a second' : formatDuration(oldestMs),
          period: formatDuration(o.rehash_period),
        },
        resource: chainResource,
        evidence: {
          verifiedRows: next.verifiedTotal,
          lastVerifiedRow: next.lastId,
          verifiedThisRun: fresh,
          reverifiedThisRun: reverified,
          oldestVerificationAgeSeconds: Math.round(oldestMs / 1000),
          rehashPeriodSeconds: Math.round(o.rehash_period / 1000),
          rehashCursor: next.rehash.cursor,
          chain: identityEvidence(identity),
          ...(identity.systemIdentifierUnavailable ? { serverIdentity: identity.systemIdentifierUnavailable } : {}),
        },
        severity: 'info',
      });
    } finally {
      // Whatever happened, no worker outlives the run.
      await passVerifier?.close();
      // Unless the pass's verifier took them (it closed them above).
      await started?.close();
    }
  },
});

interface RangedPassOptions {
  db: AuditDb;
  next: ReceiptChainCheckpoint;
  key: string;
  nowIso: string;
  rowsAhead: ChainExtent | undefined;
  rowsPerRange: number;
  rangeTimeoutMs: number;
  cap: number;
  timeUp: () => boolean;
  signal: AbortSignal;
  save: () => Promise<void>;
  /** Ranges joined onto the checkpoint: their broken rows, unknown keys and rows. */
  onJoined: (joined: JoinedRanges) => void;
  /** Whether broken rows still make findings (their action is read back then). */
  wantsAction: () => boolean;
}

const RANGE_POLL_MS = 1_000;

const rangeJob = (r: ChainRange) => ({ index: r.index, afterId: r.afterId, upToId: r.upToId, startsChain: r.index === 0 });

/** A range as a part's data, checked on the replica that takes it. */
const rangeData = z.object({ index: z.number().int().min(0), afterId: z.number().int().min(0), upToId: z.number().int().min(1), startsChain: z.boolean() });

/**
 * A pass from the first row over a long chain, cut into id ranges that replicas verify
 * (checks/lib/chain-ranges.ts). Plans the pass (once: the checkpoint keeps it), then joins
 * completed ranges onto the checkpoint as they come — only the contiguous prefix from the
 * first range — until all are joined or time is up. Returns why the pass is not done yet,
 * or undefined when it is (or was never cut: a short chain, a pass after a checkpoint).
 */
async function rangedPass(shared: SharedWork, o: RangedPassOptions): Promise<string | undefined> {
  const { next } = o;
  let planned = false;
  if (!next.ranges && next.lastId === 0 && o.rowsAhead?.lastId) {
    const input = { afterId: 0, lastId: o.rowsAhead.lastId, rows: o.rowsAhead.rowsAfter };
    const plan = planRanges(input, { rowsPerRange: o.rowsPerRange, maxRanges: 10_000 });
    if (plan.length < 2) return undefined;
    next.ranges = { pass: `${o.key}@${o.nowIso}`, ...input, rowsPerRange: o.rowsPerRange, joined: 0 };
    await shared.submit(
      next.ranges.pass,
      plan.map((r) => ({ index: r.index, data: rangeJob(r) })),
      o.rangeTimeoutMs,
    );
    planned = true;
    await o.save();
  }
  const pass = next.ranges;
  if (!pass) return undefined;
  const plan = planRanges(pass, { rowsPerRange: pass.rowsPerRange, maxRanges: 10_000 });
  if (!planned) {
    // Ranges whose every retry failed (a source down for a while) are queued again, each run.
    const results = await shared.results(pass.pass);
    const left = plan.filter((r) => r.index >= pass.joined && !results.has(r.index));
    if (left.length > 0) await shared.submit(pass.pass, left.map((r) => ({ index: r.index, data: rangeJob(r) })), o.rangeTimeoutMs);
  }
  for (;;) {
    const results = await shared.results(pass.pass);
    const ready: RangeResult[] = [];
    for (let i = pass.joined; i < plan.length && results.has(i); i++) ready.push(results.get(i) as RangeResult);
    if (ready.length > 0) {
      const joined = joinRanges(ready, next.lastId === 0 ? null : { id: next.lastId, rowHash: next.lastRowHash });
      // Ranges store no text from the rows: a broken row's action is read back when it makes a finding.
      for (const b of joined.broken) {
        if (!o.wantsAction()) break;
        b.action = (await o.db.rowById(b.id))?.action ?? '';
      }
      o.onJoined(joined);
      if (joined.last) {
        next.lastId = joined.last.id;
        next.lastRowHash = joined.last.rowHash;
      }
      next.verifiedTotal += joined.rows;
      pass.joined += ready.length;
      if (pass.joined >= plan.length) next.ranges = undefined;
      await o.save();
    }
    if (!next.ranges) return undefined;
    if (o.timeUp()) {
      return `${count(pass.joined)} of ${count(plan.length)} id ranges of this pass are verified and joined; replicas verify the rest (a range runs at most ${formatDuration(o.rangeTimeoutMs)} before another replica takes it over)`;
    }
    await new Promise<void>((r) => {
      const done = () => {
        clearTimeout(t);
        o.signal.removeEventListener('abort', done);
        r();
      };
      const t = setTimeout(done, RANGE_POLL_MS);
      o.signal.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * Whether this run will most likely verify the chain from the start or carry on a pass left
 * unfinished — read from the state alone (the deployment's record of its chain and that chain's
 * checkpoint), before any query. Wrong either way costs little: workers started for nothing are
 * closed at the end, and a pass that turns out long starts them when it learns so.
 */
async function passLikely(ctx: Pick<CheckContext, 'state' | 'deployment' | 'full' | 'shared'> & { options: { threads?: number } }): Promise<boolean> {
  // Replicas sharing a long pass verify it in ranges, each with its own workers.
  if (ctx.options.threads === 0 || ctx.shared) return false;
  if (ctx.full) return true;
  try {
    const pointer = await ctx.state.read<unknown>(pointerKey(ctx.deployment));
    if (pointer.status !== 'ok') return true;
    const p = parsePointer(pointer.value);
    if (!p.ok) return true;
    const stored = await ctx.state.read<unknown>(p.value.key);
    if (stored.status !== 'ok') return true;
    const cp = parseCheckpoint(stored.value);
    return !cp.ok || !cp.value.passComplete || cp.value.overflow;
  } catch {
    // The run itself reads the state again and says what is wrong with it.
    return false;
  }
}

/**
 * A replica's verifier between the ranges it takes: its worker threads (started, their code
 * compiled and warm) verify the next range when its keys are the same, instead of a pool
 * started and torn down per range. Closed when no range came for RANGE_VERIFIER_IDLE_MS.
 */
let heldVerifier: { keys: string; threads: number | undefined; verifier: ChainVerifier; idle: NodeJS.Timeout } | undefined;
const RANGE_VERIFIER_IDLE_MS = 30_000;

function takeRangeVerifier(rowKeys: KeyRing, threads: number | undefined): { verifier: ChainVerifier; keys: string } {
  const keys = rowKeys.fingerprints().join(',');
  const held = heldVerifier;
  heldVerifier = undefined;
  if (held) {
    clearTimeout(held.idle);
    if (held.keys === keys && held.threads === threads) return { verifier: held.verifier, keys };
    void held.verifier.close();
  }
  return { verifier: new ChainVerifier(rowKeys, { threads }), keys };
}

function holdRangeVerifier(verifier: ChainVerifier, keys: string, threads: number | undefined): void {
  if (heldVerifier) {
    // Another range's (parts ran at once): keep one.
    void verifier.close();
    return;
  }
  const idle = setTimeout(() => {
    if (heldVerifier?.verifier !== verifier) return;
    heldVerifier = undefined;
    void verifier.close();
  }, RANGE_VERIFIER_IDLE_MS);
  idle.unref();
  heldVerifier = { keys, threads, verifier, idle };
}

/** Verifies one range of a pass, on whichever replica took it; the result holds ids, hashes and times, no text from the rows. */
async function verifyRangePart(ctx: PartContext<{ batchSize: number; maxFindings: number; threads?: number }>, data: Record<string, unknown>): Promise<RangeResult> {
  const r = rangeData.parse(data);
  const db = ctx.source('postgres');
  const { rowKeys } = await loadKeys(db.historicalKeys(), ctx.source('secrets'));
  const { verifier, keys } = takeRangeVerifier(rowKeys, ctx.options.threads);
  verifier.expect(r.upToId - r.afterId);
  let ok = false;
  try {
    let first: AuditRow | undefined;
    for await (const b of db.streamRows(r.afterId, { batchSize: 1, limit: 1, untilId: r.upToId, signal: ctx.signal })) first ??= b[0];
    const result = await verifyRange(r, first, rowsOf(db, r.afterId, { batchSize: ctx.options.batchSize, untilId: r.upToId, signal: ctx.signal }), verifier, {
      cap: ctx.options.maxFindings,
      startsChain: r.startsChain,
    });
    for (const b of result.broken) b.action = '';
    if (result.first) result.first.action = '';
    ok = true;
    return result;
  } finally {
    // A range that failed may have left work in the pool: its verifier goes.
    if (ok) holdRangeVerifier(verifier, keys, ctx.options.threads);
    else await verifier.close();
  }
}

/** The key rings: current keys from the secret store, old ones from the historical table. */
async function loadKeys(historicalRead: Promise<HistoricalKey[]>, secrets: SecretStore): Promise<{ rowKeys: KeyRing; rootKeys: KeyRing }> {
  const [receiptHolders, rootHolders, historical] = await Promise.all([secrets.signingKeys('receipt'), secrets.signingKeys('root'), historicalRead]);
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
  return { rowKeys, rootKeys };
}

/** Queues (after, upTo] for re-verification, merging with an adjacent range. */
function addPending(cp: ReceiptChainCheckpoint, after: number, upTo: number): void {
  const last = cp.pending[cp.pending.length - 1];
  if (last && last[1] >= after && last[0] <= upTo) {
    last[0] = Math.min(last[0], after);
    last[1] = Math.max(last[1], upTo);
  } else cp.pending.push([after, upTo]);
  if (cp.pending.length > MAX_PENDING) {
    // Too many separate ranges: one covering them all is re-verified instead.
    cp.pending = [[cp.pending[0][0], cp.pending[cp.pending.length - 1][1]]];
  }
}

/** The rows after `afterId`: raw batches where the source sends them (decoded and verified on the pool's threads), else parsed. */
function rowsOf(db: AuditDb, afterId: number, opts: StreamRowsOptions): AsyncIterable<AuditRow[] | RawAuditRows> {
  return db.streamRawRows ? db.streamRawRows(afterId, opts) : db.streamRows(afterId, opts);
}

/** The anchor a re-verification starting after `id` continues from; a row that changed or vanished is recorded. */
async function anchorAt(db: AuditDb, id: number, expectedHash: string | undefined, addChanged: (c: ChangedRow) => void): Promise<Anchor> {
  if (id === 0) return null;
  const row = await db.rowById(id);
  if (expectedHash && (!row || row.rowHash !== expectedHash)) addChanged({ id, hash: expectedHash });
  return row ? { id: row.id, rowHash: row.rowHash } : undefined;
}

async function reverifyPending(
  db: AuditDb,
  cp: ReceiptChainCheckpoint,
  batchSize: number,
  verifier: ChainVerifier,
  timeUp: () => boolean,
  take: (v: BatchVerdict) => void,
  addChanged: (c: ChangedRow) => void,
  signal: AbortSignal,
): Promise<number> {
  let done = 0;
  while (cp.pending.length > 0 && !timeUp()) {
    const range = cp.pending[0];
    const anchor = await anchorAt(db, range[0], undefined, addChanged);
    let finished = true;
    await verifyStream(rowsOf(db, range[0], { batchSize, untilId: range[1], signal }), anchor, verifier, (v) => {
      take(v);
      range[0] = (v.last as { id: number }).id;
      done += v.rows;
      if (timeUp()) {
        finished = range[0] >= range[1];
        return false;
      }
      return true;
    });
    if (!finished) break;
    cp.pending.shift();
  }
  return done;
}

interface SliceOptions {
  now: Date;
  periodMs: number;
  batchSize: number;
  verifier: ChainVerifier;
  timeUp: () => boolean;
  take: (v: BatchVerdict) => void;
  addChanged: (c: ChangedRow) => void;
  signal: AbortSignal;
}

/**
 * Rows due for re-verification this cycle: the share of the chain that the time since the
 * last cycle represents of the period (plus what earlier cycles owed), so that a round over
 * every row completes within `periodMs` however often the check runs.
 */
export function rowsDue(total: number, elapsedMs: number, periodMs: number, owed: number): number {
  if (total <= 0) return 0;
  let due = 0;
  if (elapsedMs > 0) {
    // The next cycle may come as late as this one did: finish the round one interval early.
    due = elapsedMs * 2 >= periodMs ? total : Math.ceil((total * elapsedMs) / (periodMs - elapsedMs));
  }
  return Math.min(total, due + owed);
}

/** The rolling re-verification of this cycle; returns the rows re-verified. */
async function rollingSlice(db: AuditDb, cp: ReceiptChainCheckpoint, o: SliceOptions): Promise<number> {
  const r = cp.rehash;
  const nowIso = o.now.toISOString();
  const elapsed = o.now.getTime() - Date.parse(r.lastCycleAt);
  const due = rowsDue(cp.verifiedTotal, elapsed, o.periodMs, r.owed);
  let done = 0;
  let wrapped = false;
  while (done < due && !o.timeUp()) {
    const anchor = await anchorAt(db, r.cursor, r.cursorHash || undefined, o.addChanged);
    let read = 0;
    let asked = due - done;
    await verifyStream(rowsOf(db, r.cursor, { batchSize: o.batchSize, limit: asked, untilId: cp.lastId, signal: o.signal }), anchor, o.verifier, (v) => {
      o.take(v);
      const last = v.last as { id: number; rowHash: string };
      r.cursor = last.id;
      r.cursorHash = last.rowHash;
      read += v.rows;
      return !o.timeUp();
    });
    done += read;
    asked -= read;
    if (o.timeUp() && asked > 0) break;
    if (asked > 0) {
      // The end of the verified rows: a round is complete, the next starts at the first row.
      // At most one new round per cycle (fewer rows than counted: some vanished).
      if (wrapped) break;
      wrapped = true;
      r.restVerifiedSince = r.roundStartedAt;
      r.roundStartedAt = nowIso;
      r.cursor = 0;
      r.cursorHash = '';
    }
  }
  r.owed = wrapped && done < due && !o.timeUp() ? 0 : Math.max(0, due - done);
  r.lastCycleAt = nowIso;
  return done;
}

/** The age of the oldest verification of any row: rows after the cursor were verified in the previous round at the earliest. */
function oldestVerificationAge(cp: ReceiptChainCheckpoint, now: Date): number {
  if (cp.verifiedTotal === 0) return 0;
  const since = cp.rehash.cursor >= cp.lastId ? cp.rehash.roundStartedAt : cp.rehash.restVerifiedSince;
  return Math.max(0, now.getTime() - Date.parse(since));
}

/** A key fingerprint from a row (hostile text): shown when it has the fingerprint's shape, else as a stand-in (none of its text). */
function fingerprintShown(fp: string): string {
  return untrusted.shaped(fp, FINGERPRINT_RE);
}

function rootProblem(root: RootRow, target: string | undefined, keys: KeyRing): string | undefined {
  if (target === undefined) return `row ${root.upToId} does not exist`;
  if (root.rootHash !== target) return `its root_hash is not row ${root.upToId}'s row_hash`;
  if (!ROW_HASH_RE.test(root.rootHash)) return 'its root_hash is not 64 lowercase hex digits';
  const fp = shortFingerprint(fingerprintShown(root.keyFingerprint));
  const outcome = keys.verify(root.keyFingerprint, Buffer.from(root.rootHash, 'hex'), root.signature);
  if (outcome === 'unknown-key') return `it is signed by ${fp}, which is neither a configured root key nor in the historical keys table`;
  if (outcome === 'malformed') return 'its signature is not 64 bytes of base64';
  if (outcome === 'invalid') return `its signature does not verify under ${fp}`;
  return undefined;
}

/** Broken rows of one run: all counted once, the first `cap` (by id) kept for findings and the checkpoint. */
class BrokenRows {
  total = 0;
  firstId: number | undefined;
  readonly #cap: number;
  readonly #rows = new Map<number, BrokenRowVerdict & { note?: string }>();
  /** Broken rows beyond the cap, counted but not kept. */
  #dropped = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  get kept(): number {
    return this.#rows.size;
  }

  get overflowed(): boolean {
    return this.#dropped > 0;
  }

  add(b: BrokenRowVerdict): void {
    if (this.#rows.has(b.id)) return;
    this.total++;
    if (this.firstId === undefined || b.id < this.firstId) this.firstId = b.id;
    if (this.#rows.size >= this.#cap) {
      this.#dropped++;
      return;
    }
    this.#rows.set(b.id, b);
  }

  /** Broken rows counted elsewhere (a range keeps its first ones) and not kept here. */
  uncounted(n: number): void {
    if (n <= 0) return;
    this.total += n;
    this.#dropped += n;
  }

  note(id: number, note: string): void {
    const r = this.#rows.get(id);
    if (r) r.note = note;
  }

  reset(): void {
    this.total = 0;
    this.firstId = undefined;
    this.#dropped = 0;
    this.#rows.clear();
  }

  /** The kept rows, for re-verification next run; an unknown predecessor is stored as the row before by id. */
  stored(): { id: number; prevId: number | null }[] {
    return [...this.#rows.values()].map((r) => ({ id: r.id, prevId: r.prevId === undefined ? Math.max(0, r.id - 1) : r.prevId }));
  }

  reports(): (BrokenRowVerdict & { note?: string })[] {
    return [...this.#rows.values()].sort((a, b) => a.id - b.id);
  }
}
