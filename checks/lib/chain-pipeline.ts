/**
 * Verifying a stream of audit rows on every core. This thread checks the rows — links, hashes,
 * which key — and packs their signatures; a pool of worker threads verifies the signatures
 * (verifyWork), about 100 bytes a row transferred, while this thread reads and checks the next
 * rows. Two ways in:
 * - raw batches (RawAuditRows: the bytes of a `COPY … (FORMAT binary)`, from a Postgres whose
 *   audit table has the documented column types): checked over their bytes (raw-rows-work.ts,
 *   about 3–5 µs a row against about 50 for a signature);
 * - parsed rows (any other AuditDb): hashed and linked as objects (prepareBatch).
 * The raw batches were once checked on the workers, each decoding and hashing whole batches:
 * each worker loaded and compiled that code in every run (V8's TurboFan, tens of ms for each of
 * its largest functions) and ran its first batches on code not yet compiled. Here that happens
 * once. With the reader's first batches smaller (batchRows), a 100 000-row first pass took
 * 3.38 s of the check's time against 3.50 s (medians of six runs each, in turn).
 * Verdicts are joined in id order, so they are exactly verifyBatch()'s either way: only where
 * the work is done changes.
 *
 * Memory stays flat: at most `maxInFlight` chunks are waiting for their verdicts; the reader
 * is not asked for more rows until one comes back. This thread yields between chunks.
 */
import { availableParallelism } from 'node:os';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AuditRow, RawAuditRows } from '../../src/core/sources';
import { AuditError, ErrorCodes } from '../../src/core/errors';
import { detachOnce, niceFromEnv } from '../../src/core/threads';
import { finishBatch, prepareBatch, verifyWork, type Anchor, type ChunkVerdict, type SignatureWork } from './chain-verify';
export type { ChunkVerdict } from './chain-verify';
import type { KeyRing } from './ed25519';
import { prepareRawRows, type RawRowsResult } from './raw-rows-work';

// Signature work is transferred to the workers: see detachOnce.
detachOnce();

/** The slice of piscina this uses (loaded only when a pass is long enough to need it). */
interface Pool {
  run<T = Uint8Array>(task: unknown, opts?: { transferList?: ArrayBuffer[] }): Promise<T>;
  destroy(): Promise<void>;
}

/** piscina, loaded on first use (or ahead, by the check's preload). */
export function loadWorkerPool(): { Piscina: new (o: Record<string, unknown>) => Pool } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('piscina') as { Piscina: new (o: Record<string, unknown>) => Pool };
}


/** A pool started ahead of its verifier (prestartVerifierPool): the verifier built with it adopts it. */
export interface StartedPool {
  readonly threads: number;
  readonly nice: number;
  /** Ends the pool when no verifier adopted it (a no-op once one has: the verifier closes it). */
  close(): Promise<void>;
}

export interface ChainVerifierOptions {
  /** Worker threads (default: every core). 0 verifies on the calling thread only. */
  threads?: number;
  /** Rows verified on this thread before the pool starts (starting workers costs more than a short run saves). */
  poolAfterRows?: number;
  /** Rows per chunk handed to a worker (and hashed between two turns of the event loop). */
  chunkRows?: number;
  /**
   * Lower priority of the worker threads (nice increment, Unix). The daemon sets it (through
   * AEGIS_AUDIT_WORKER_NICE, default 10 there) so its own thread — the HTTP server, and the
   * reading and hashing that feed the workers — is never queued behind them.
   */
  niceIncrement?: number;
  /** Workers started ahead (prestartVerifierPool with the same threads and nice): used instead of starting others. */
  pool?: StartedPool;
}

/**
 * The young generation of each worker's heap. A worker verifies a batch's signatures at a time
 * and keeps nothing, yet V8 grows a busy thread's young generation to 16 MiB semi-spaces: at
 * 100 000 rows a pass peaked at 220 MiB with the default and 192 MiB with 4 (same CPU).
 */
const WORKER_YOUNG_MB = 4;


/** A piscina pool of `threads` workers; undefined where worker threads cannot start. */
function newPool(threads: number, nice: number): Pool | undefined {
  try {
    const { Piscina } = loadWorkerPool();
    return new Piscina({
      filename: workerFile(),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 5_000,
      niceIncrement: nice,
      recordTiming: false,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
    });
  } catch {
    return undefined;
  }
}

class Prestarted implements StartedPool {
  /** A verifier took the pool over, or the handle closed it: either way it is no longer the handle's to end. */
  adopted = false;
  constructor(
    readonly pool: Pool,
    readonly threads: number,
    readonly nice: number,
  ) {}

  async close(): Promise<void> {
    if (!this.adopted) {
      this.adopted = true;
      await this.pool.destroy().catch(() => undefined);
    }
  }
}

/**
 * Starts a verifier's worker threads now, before its keys are known — when a long pass is
 * about to come, so that their start overlaps the queries that precede it. Undefined when
 * there are to be no workers (threads 0) or they cannot start. The caller closes it unless a
 * ChainVerifier adopted it.
 */
export function prestartVerifierPool(opts: Pick<ChainVerifierOptions, 'threads' | 'niceIncrement'> = {}): StartedPool | undefined {
  const threads = Math.max(0, opts.threads ?? availableParallelism());
  const nice = opts.niceIncrement ?? niceFromEnv('AEGIS_AUDIT_WORKER_NICE', 0);
  if (threads === 0) return undefined;
  const pool = newPool(threads, nice);
  return pool ? new Prestarted(pool, threads, nice) : undefined;
}

/** The compiled worker: beside this file in dist/; under ts-jest (sources), the build's copy. */
function workerFile(): string {
  const here = resolve(__dirname, 'signature-worker.js');
  if (existsSync(here)) return here;
  return resolve(__dirname, '../../dist/checks/lib/signature-worker.js');
}

export class ChainVerifier {
  readonly #keys: KeyRing;
  readonly #threads: number;
  readonly #poolAfter: number;
  readonly #ring = randomUUID();
  #pool: Pool | undefined;
  /** Workers started ahead, waiting for the pool to be needed. */
  #spare: Pool | undefined;
  #poolFailed = false;
  /** Closed: no pool starts again (a late expect() after the pass must not start one). */
  #closed = false;
  #seen = 0;
  readonly #nice: number;
  readonly chunkRows: number;

  constructor(keys: KeyRing, opts: ChainVerifierOptions = {}) {
    this.#keys = keys;
    this.#threads = Math.max(0, opts.threads ?? availableParallelism());
    this.#poolAfter = opts.poolAfterRows ?? 4000;
    this.chunkRows = opts.chunkRows ?? 250;
    this.#nice = opts.niceIncrement ?? niceFromEnv('AEGIS_AUDIT_WORKER_NICE', 0);
    const started = opts.pool;
    if (started instanceof Prestarted && !started.adopted && started.threads === this.#threads && started.nice === this.#nice) {
      // Used when the pool would start anyway (enough rows), closed with this verifier either way.
      started.adopted = true;
      this.#spare = started.pool;
    }
  }

  /** Whether signatures are being verified by worker threads. */
  get pooled(): boolean {
    return this.#pool !== undefined;
  }

  /** How many chunks may wait for their signatures at once (bounds memory). */
  get maxInFlight(): number {
    return this.#pool ? this.#threads * 2 : 1;
  }

  /** Told how many rows are about to come: enough of them start the workers now, while the first rows are read. */
  expect(rows: number): void {
    if (rows >= this.#poolAfter) this.#startPool(true);
  }

  #startPool(now = false): Pool | undefined {
    if (this.#pool || this.#poolFailed || this.#closed || this.#threads === 0 || (!now && this.#seen < this.#poolAfter)) return this.#pool;
    this.#pool = this.#spare ?? newPool(this.#threads, this.#nice);
    this.#spare = undefined;
    // No worker threads here: verify on this thread, as before.
    if (!this.#pool) this.#poolFailed = true;
    return this.#pool;
  }

  /** Verifies a batch's packed signatures: on the pool when it runs, else here. */
  async #signatures(rows: number, work: SignatureWork): Promise<Uint8Array> {
    this.#seen += rows;
    const pool = this.#startPool();
    if (pool && work.count > 0) {
      const data = work.data;
      try {
        return await pool.run({ ring: this.#ring, keys: this.#keys.portable(), count: work.count, data }, { transferList: [data.buffer as ArrayBuffer] });
      } catch (e) {
        // The data went to the worker; a failed worker (not bad rows: those are outcomes) is a failed run.
        throw new Error(`signature verification failed in a worker thread: ${(e as Error).message}`);
      }
    }
    return verifyWork(work, (slot, message, signature) => this.#keys.verifySlot(slot, message, signature));
  }

  /** Verifies one chunk of rows (links and hashes now, signatures possibly on another core). */
  verify(rows: readonly AuditRow[], anchor: Anchor, want?: ReadonlySet<number>): Promise<ChunkVerdict> {
    const b = prepareBatch(rows, anchor, this.#keys);
    const targets: [number, string][] = [];
    if (want && want.size > 0) for (const r of rows) if (want.has(r.id)) targets.push([r.id, r.rowHash]);
    return this.#signatures(rows.length, b.work).then((outcomes) => ({ ...finishBatch(b, outcomes), targets }));
  }

  /**
   * Verifies a raw batch (the server's bytes): decoded, hashed and linked on this thread, the
   * signatures on a worker thread when the pool runs, else here. The verdict is verify()'s for
   * the same rows.
   */
  async verifyRaw(batch: RawAuditRows, anchor: Anchor, want?: ReadonlySet<number>): Promise<ChunkVerdict> {
    const task = { data: batch.data, payload: batch.payload, table: batch.table, anchor, want: want && want.size > 0 ? [...want] : [] };
    const prepared = prepareRawRows(task, this.#keys);
    const r: RawRowsResult = 'badData' in prepared ? prepared : prepared.finish(await this.#signatures(batch.rows, prepared.work));
    // Bad data in a row: the error the parsed reader gives for it, as if the batch could not be read.
    if ('badData' in r) throw new AuditError(ErrorCodes.BAD_DATA, r.badData, { source: 'postgres', reason: 'bad_data' });
    return r;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [this.#pool, this.#spare];
    this.#pool = undefined;
    this.#spare = undefined;
    for (const pool of pools) if (pool) await pool.destroy().catch(() => undefined);
  }
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Verifies every row `source` yields, in chunks, with signatures verified in parallel, and
 * hands each chunk's verdict to `onVerified` in id order. `onVerified` returns false to stop:
 * chunks after that one are not reported (the caller's record ends at a verified chunk).
 * When the source fails, the chunks read before the failure are still reported, then the
 * failure is thrown. Raw batches (RawAuditRows) are verified whole, on a worker thread;
 * parsed rows in chunks of `verifier.chunkRows`. `want`: ids whose row_hash each verdict
 * carries in `targets`.
 */
export async function verifyStream(
  source: AsyncIterable<AuditRow[] | RawAuditRows>,
  anchor: Anchor,
  verifier: ChainVerifier,
  onVerified: (verdict: ChunkVerdict) => boolean | Promise<boolean>,
  want?: ReadonlySet<number>,
): Promise<void> {
  const inFlight: Promise<ChunkVerdict>[] = [];
  let stopped = false;
  /** A chunk that could not be verified: nothing after it is reported. */
  let broken: { e: unknown } | undefined;
  const takeOne = async () => {
    const next = inFlight.shift();
    if (!next || stopped) return;
    let verdict: ChunkVerdict;
    try {
      verdict = await next;
    } catch (e) {
      broken = { e };
      stopped = true;
      return;
    }
    try {
      if (!(await onVerified(verdict))) stopped = true;
    } catch (e) {
      broken = { e };
      stopped = true;
    }
  };
  const send = async (verdict: Promise<ChunkVerdict>): Promise<boolean> => {
    verdict.catch(() => undefined);
    inFlight.push(verdict);
    while (inFlight.length >= verifier.maxInFlight && !stopped) await takeOne();
    if (stopped) return false;
    await yieldToLoop();
    return true;
  };
  /** The source failed (or preparing a chunk threw): what was read before still counts. */
  let failure: { e: unknown } | undefined;
  try {
    outer: for await (const batch of source) {
      if (!Array.isArray(batch)) {
        const raw = batch as RawAuditRows;
        if (raw.rows === 0) continue;
        const verdict = verifier.verifyRaw(raw, anchor, want);
        anchor = { id: raw.lastId, rowHash: raw.lastRowHash };
        if (!(await send(verdict))) break outer;
        continue;
      }
      for (let i = 0; i < batch.length; i += verifier.chunkRows) {
        const rows = i === 0 && batch.length <= verifier.chunkRows ? batch : batch.slice(i, i + verifier.chunkRows);
        const verdict = verifier.verify(rows, anchor, want);
        const last = rows[rows.length - 1];
        anchor = { id: last.id, rowHash: last.rowHash };
        if (!(await send(verdict))) break outer;
      }
    }
  } catch (e) {
    failure = { e };
  }
  while (inFlight.length > 0 && !stopped) await takeOne();
  // Verdicts no one will read (after a stop): settled quietly above, dropped here.
  inFlight.length = 0;
  if (broken) throw broken.e;
  if (failure) throw failure.e;
}
