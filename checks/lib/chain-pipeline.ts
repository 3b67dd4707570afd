/**
 * Verifying a stream of audit rows on every core. The main thread reads, hashes and checks
 * links (prepareBatch: cheap next to a signature); the signatures go, packed, to a worker
 * pool (piscina) that verifies them on all cores while the next rows are read and hashed.
 * Verdicts are joined in id order, so they are exactly verifyBatch()'s: only where the
 * signatures are verified changes.
 *
 * Memory stays flat: at most `maxInFlight` chunks are prepared and waiting for their
 * signatures; the reader is not asked for more rows until one comes back. The main thread
 * yields between chunks, so a daemon's HTTP server keeps answering during a long pass.
 *
 * Measured (bench/receipt-chain.ts, docs/performance.md): hashing stays on the main thread —
 * handing rows to a worker (a structured clone of each row and its payload) costs about as
 * much as hashing them there, while packed signatures are a single transfer.
 */
import { availableParallelism } from 'node:os';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AuditRow } from '../../src/core/sources';
import { finishBatch, prepareBatch, verifyWork, type Anchor, type BatchVerdict, type PreparedBatch } from './chain-verify';
import type { KeyRing } from './ed25519';

/** The slice of piscina this uses (loaded only when a pass is long enough to need it). */
interface Pool {
  run(task: unknown, opts?: { transferList?: ArrayBuffer[] }): Promise<Uint8Array>;
  destroy(): Promise<void>;
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
}

function niceFromEnv(): number {
  const v = Number(process.env.AEGIS_AUDIT_WORKER_NICE ?? 0);
  return Number.isInteger(v) && v >= 0 && v <= 19 ? v : 0;
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
  #poolFailed = false;
  #seen = 0;
  readonly #nice: number;
  readonly chunkRows: number;

  constructor(keys: KeyRing, opts: ChainVerifierOptions = {}) {
    this.#keys = keys;
    this.#threads = Math.max(0, opts.threads ?? availableParallelism());
    this.#poolAfter = opts.poolAfterRows ?? 4000;
    this.chunkRows = opts.chunkRows ?? 250;
    this.#nice = opts.niceIncrement ?? niceFromEnv();
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
    if (this.#pool || this.#poolFailed || this.#threads === 0 || (!now && this.#seen < this.#poolAfter)) return this.#pool;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Piscina } = require('piscina') as { Piscina: new (o: Record<string, unknown>) => Pool };
      this.#pool = new Piscina({ filename: workerFile(), minThreads: this.#threads, maxThreads: this.#threads, idleTimeout: 5_000, niceIncrement: this.#nice, recordTiming: false });
    } catch {
      // No worker threads here: verify on this thread, as before.
      this.#poolFailed = true;
    }
    return this.#pool;
  }

  /** Verifies the signatures of a prepared batch: on the pool when it runs, else here. */
  async #signatures(b: PreparedBatch): Promise<Uint8Array> {
    this.#seen += b.rows.length;
    const pool = this.#startPool();
    if (pool && b.work.count > 0) {
      const data = b.work.data;
      try {
        return await pool.run({ ring: this.#ring, keys: this.#keys.portable(), count: b.work.count, data }, { transferList: [data.buffer as ArrayBuffer] });
      } catch (e) {
        // The data went to the worker; a failed worker (not bad rows: those are outcomes) is a failed run.
        throw new Error(`signature verification failed in a worker thread: ${(e as Error).message}`);
      }
    }
    return verifyWork(b.work, (slot, message, signature) => this.#keys.verifySlot(slot, message, signature));
  }

  /** Verifies one chunk of rows (links and hashes now, signatures possibly on another core). */
  verify(rows: readonly AuditRow[], anchor: Anchor): Promise<BatchVerdict> {
    const b = prepareBatch(rows, anchor, this.#keys);
    return this.#signatures(b).then((outcomes) => finishBatch(b, outcomes));
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool) await pool.destroy().catch(() => undefined);
  }
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Verifies every row `source` yields, in chunks, with signatures verified in parallel, and
 * hands each chunk's verdict to `onVerified` in id order. `onVerified` returns false to stop:
 * chunks after that one are not reported (the caller's record ends at a verified chunk).
 * When the source fails, the chunks read before the failure are still reported, then the
 * failure is thrown.
 */
export async function verifyStream(
  source: AsyncIterable<AuditRow[]>,
  anchor: Anchor,
  verifier: ChainVerifier,
  onVerified: (rows: readonly AuditRow[], verdict: BatchVerdict) => boolean | Promise<boolean>,
): Promise<void> {
  const inFlight: { rows: readonly AuditRow[]; verdict: Promise<BatchVerdict> }[] = [];
  let stopped = false;
  /** A chunk that could not be verified: nothing after it is reported. */
  let broken: { e: unknown } | undefined;
  const takeOne = async () => {
    const next = inFlight.shift();
    if (!next || stopped) return;
    let verdict: BatchVerdict;
    try {
      verdict = await next.verdict;
    } catch (e) {
      broken = { e };
      stopped = true;
      return;
    }
    try {
      if (!(await onVerified(next.rows, verdict))) stopped = true;
    } catch (e) {
      broken = { e };
      stopped = true;
    }
  };
  /** The source failed (or preparing a chunk threw): what was read before still counts. */
  let failure: { e: unknown } | undefined;
  try {
    outer: for await (const batch of source) {
      for (let i = 0; i < batch.length; i += verifier.chunkRows) {
        const rows = i === 0 && batch.length <= verifier.chunkRows ? batch : batch.slice(i, i + verifier.chunkRows);
        const verdict = verifier.verify(rows, anchor);
        verdict.catch(() => undefined);
        inFlight.push({ rows, verdict });
        const last = rows[rows.length - 1];
        anchor = { id: last.id, rowHash: last.rowHash };
        while (inFlight.length >= verifier.maxInFlight && !stopped) await takeOne();
        if (stopped) break outer;
        await yieldToLoop();
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
