/**
 * The machine's limit for receipt-chain: libsodium `crypto_sign_verify_detached` over the
 * chain's own signatures on every core at once, with no I/O, no parsing and no hashing —
 * signatures and public keys decoded into memory first. A full pass can approach this rate
 * and never beat it; bench/receipt-chain.ts states its rows/s as a ratio of it, measured in
 * the same run, so the ratio holds however busy the machine is.
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

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.sodium);
// A private copy of this thread's share: sodium-native does not read a SharedArrayBuffer.
const buf = Buffer.from(Buffer.from(workerData.data).subarray(workerData.from * ${STRIDE}, workerData.to * ${STRIDE}));
parentPort.once('message', () => {
  let ok = 0;
  for (let i = 0; i < workerData.to - workerData.from; i++) {
    const at = i * ${STRIDE};
    if (sodium.crypto_sign_verify_detached(buf.subarray(at + 32, at + 96), buf.subarray(at, at + 32), buf.subarray(at + 96, at + 128))) ok++;
  }
  parentPort.postMessage(ok);
});
`;

/** Verifies every signature once, split across `threads` worker threads started beforehand; rows/s. */
export async function verifyLimit(sigs: Signatures, threads = availableParallelism()): Promise<{ perSecond: number; valid: number; threads: number; cpuMicrosPerSignature: number }> {
  const sodium = require.resolve('sodium-native');
  const per = Math.ceil(sigs.count / threads);
  const workers = Array.from({ length: threads }, (_, i) => new Worker(WORKER, { eval: true, workerData: { sodium, data: sigs.data, from: i * per, to: Math.min(sigs.count, (i + 1) * per) } }));
  try {
    await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))));
    const start = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
            w.postMessage('go');
          }),
      ),
    );
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    // process-wide: the worker threads' CPU time is in it.
    const cpu = process.cpuUsage(cpu0);
    return { perSecond: sigs.count / s, valid: results.reduce((a, b) => a + b, 0), threads, cpuMicrosPerSignature: (cpu.user + cpu.system) / sigs.count };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
