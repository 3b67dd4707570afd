/**
 * The machine's limit for receipt-chain: libsodium `crypto_sign_verify_detached` over the
 * chain's own signatures on every core at once, with no I/O, no parsing and no hashing —
 * signatures and public keys decoded into memory first. A full pass can approach this rate
 * and never beat it; bench/receipt-chain.ts states its rows/s as a ratio of it, measured in
 * the same run, so the ratio holds however busy the machine is.
 *
 * The threads take the signatures in small chunks from a shared counter, as a pass's workers
 * take its batches, rather than a fixed share each: a virtual machine's cores are not always
 * equal. On the AMD EPYC machine one core verified at 52 µs a signature while the other took
 * 73 (2026-12-02, about 18:44 UTC, three runs in a row); halves ended when the slower thread
 * did, and that limit (27 000–31 000/s) was up to a fifth below what the same threads did
 * taking chunks (31 500–32 900/s), which made a pass look that much closer to the limit than
 * it was.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { Client } from 'pg';
import { KeyRing } from '../checks/lib/ed25519';

export interface Signatures {
  /** Per signature: 32-byte message, 64-byte signature, 32-byte public key. */
  data: SharedArrayBuffer;
  count: number;
}

const STRIDE = 128;

/** Reads the first `max` rows' row_hash, signature and key (resolved from the PEMs given) into memory. */
export async function loadSignatures(url: string, table: string, publicKeyPems: readonly string[], max = Number.POSITIVE_INFINITY): Promise<Signatures> {
  const ring = new KeyRing();
  const raw = new Map<string, Buffer>();
  for (const pem of publicKeyPems) {
    const fp = ring.addPem(pem);
    const k = ring.portable()[ring.slot(fp) as number].raw;
    if (k) raw.set(fp, Buffer.from(k));
  }
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const [{ n }] = (await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows;
    const data = new SharedArrayBuffer(Math.min(Number(n), max) * STRIDE);
    const buf = Buffer.from(data);
    let count = 0;
    let last = 0;
    for (;;) {
      const { rows } = await c.query<{ id: string; row_hash: string; signature: string; key_fingerprint: string }>(
        `SELECT id, row_hash, signature, key_fingerprint FROM ${table} WHERE id > $1 ORDER BY id LIMIT 50000`,
        [last],
      );
      if (rows.length === 0 || count * STRIDE >= buf.length) break;
      for (const r of rows) {
        const key = raw.get(r.key_fingerprint);
        if (!key || count * STRIDE >= buf.length) continue;
        const at = count++ * STRIDE;
        buf.write(r.row_hash, at, 32, 'hex');
        buf.write(r.signature, at + 32, 64, 'base64');
        key.copy(buf, at + 96);
      }
      last = Number(rows[rows.length - 1].id);
    }
    return { data, count };
  } finally {
    await c.end();
  }
}

/** Signatures a thread takes from the shared counter at a time (about 13 ms of work: the last chunk ends the run). */
const CHUNK = 256;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.sodium);
const shared = Buffer.from(workerData.data);
// Each chunk is copied here first: sodium-native does not read a SharedArrayBuffer (32 KiB, a
// few µs a chunk against about 13 ms of verifying it).
const buf = Buffer.alloc(${CHUNK} * ${STRIDE});
const next = new Int32Array(workerData.next);
parentPort.postMessage('ready');
parentPort.once('message', () => {
  let ok = 0;
  let done = 0;
  const t0 = process.hrtime.bigint();
  for (;;) {
    const from = Atomics.add(next, 0, ${CHUNK});
    if (from >= workerData.count) break;
    const to = Math.min(workerData.count, from + ${CHUNK});
    shared.copy(buf, 0, from * ${STRIDE}, to * ${STRIDE});
    for (let i = 0; i < to - from; i++) {
      const at = i * ${STRIDE};
      if (sodium.crypto_sign_verify_detached(buf.subarray(at + 32, at + 96), buf.subarray(at, at + 32), buf.subarray(at + 96, at + 128))) ok++;
    }
    done += to - from;
  }
  parentPort.postMessage({ ok, done, ns: Number(process.hrtime.bigint() - t0) });
});
`;

export interface Limit {
  /** Signatures verified per second by all the threads together. */
  perSecond: number;
  valid: number;
  threads: number;
  /** CPU time of the process over the run (all threads) per signature, µs. */
  cpuMicrosPerSignature: number;
  /** Per thread, the wall-clock µs it took a signature (unequal when the machine's cores are). */
  threadMicrosPerSignature: number[];
}

/** Verifies every signature once on `threads` worker threads started (and loaded) beforehand, which take them in chunks; rows/s. */
export async function verifyLimit(sigs: Signatures, threads = availableParallelism()): Promise<Limit> {
  const sodium = require.resolve('sodium-native');
  const next = new SharedArrayBuffer(4);
  const workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true, workerData: { sodium, data: sigs.data, count: sigs.count, next } }));
  try {
    // Each thread has loaded libsodium when it says so: the clock starts after.
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((ready, reject) => {
            w.once('message', ready);
            w.once('error', reject);
          }),
      ),
    );
    const start = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<{ ok: number; done: number; ns: number }>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
            w.postMessage('go');
          }),
      ),
    );
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    // process-wide: the worker threads' CPU time is in it.
    const cpu = process.cpuUsage(cpu0);
    return {
      perSecond: sigs.count / s,
      valid: results.reduce((a, r) => a + r.ok, 0),
      threads,
      cpuMicrosPerSignature: (cpu.user + cpu.system) / sigs.count,
      threadMicrosPerSignature: results.map((r) => r.ns / 1000 / Math.max(1, r.done)),
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
