/**
 * CPU time per row of each stage of a worker's work on a raw batch of audit rows — everything
 * but the signature, which is the limit itself — on one thread, over the sandbox chain's real
 * rows as Postgres sends them (`COPY … (FORMAT binary)`, the reader's own batches). Prints µs of
 * CPU per row (process.cpuUsage: this thread and V8's helper threads, so garbage collection
 * counts), the median of a few rounds, for the path the workers take and for the parsed path
 * (pg-style rows, JSON.parse, the object canonicaliser) it replaced.
 *
 *   npm run build && node dist/bench/chain-stages.js [rows=30000] [rounds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import * as crypto from 'node:crypto';
import { buildSandbox } from '../src/sandbox/build';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';
import { postgresSchema } from '../src/config/schema';
import { PostgresAuditDb } from '../src/sources/postgres';
import type { RawAuditRows } from '../src/core/sources';
import { decodeAuditRows } from '../src/core/raw-audit-rows';
import { canonicalRow, chainHash } from '../checks/lib/canonical';
import { prepareBatch, verifyWork } from '../checks/lib/chain-verify';
import { KeyRing } from '../checks/lib/ed25519';
import { verifyRawRows, verifyRawRowsByObjects } from '../checks/lib/raw-rows-work';
import { canonicalPayloadInto } from '../checks/lib/canonical-bytes';

type Stage = { name: string; run: (batches: RawAuditRows[]) => unknown };

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function sodiumSha(): ((out: Buffer, data: Buffer) => void) | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const s = require('sodium-native') as { crypto_hash_sha256?: (out: Buffer, data: Buffer) => void };
    return s.crypto_hash_sha256;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 30_000);
  const rounds = Number(process.argv[3] ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'bench-stages-'));
  const pg = await startEmbeddedPostgres();
  try {
    const sandbox = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl, cloud: false });
    try {
      const src = new PostgresAuditDb(postgresSchema.parse({ url: sandbox.postgresUrl, schema: 'public' }));
      const batches: RawAuditRows[] = [];
      try {
        for await (const b of src.streamRawRows(0, { batchSize: 5000 })) {
          if (Array.isArray(b)) throw new Error('the sandbox table was read by the parsed reader, not as raw batches');
          batches.push(b as RawAuditRows);
        }
      } finally {
        await src.close?.();
      }
      const n = batches.reduce((s, b) => s + b.rows, 0);
      const keys = new KeyRing();
      for (const k of sandbox.plan.receiptKeys) keys.addPem(k.publicKeyPem);
      const payloadChars = batches.map((b) => decodeAuditRows(b).reduce((s, r) => s + JSON.stringify(r.payload).length, 0)).reduce((a, b) => a + b, 0) / n;
      // Inputs of the later stages, made once.
      const decoded = batches.map((b) => decodeAuditRows(b));
      const canon = decoded.map((rs) => rs.map((r) => canonicalRow(r)));
      const hashInput = decoded.map((rs, i) => rs.map((r, j) => Buffer.from(r.prevHash + canon[i][j])));
      const sodium = sodiumSha();
      const digest = Buffer.alloc(32);
      const noSig = () => true;
      const anchorOf = (i: number) => (i === 0 ? null : { id: batches[i - 1].lastId, rowHash: batches[i - 1].lastRowHash });
      const oneShot = (crypto as { hash?: (a: string, d: Buffer | string, e?: string) => Buffer | string }).hash;
      const scratch = Buffer.alloc(1 << 20);
      const stages: Stage[] = [
        { name: 'object path: decode rows (strings, Date, JSON.parse)', run: (bs) => bs.map((b) => decodeAuditRows(b)) },
        { name: 'object path: canonical form (objects → string)', run: () => decoded.map((rs) => rs.map((r) => canonicalRow(r))) },
        { name: 'object path: SHA-256, crypto.hash(prev + canonical, hex)', run: () => decoded.map((rs, i) => rs.map((r, j) => chainHash(r.prevHash, canon[i][j]))) },
        { name: 'object path: prepareBatch (canonical, SHA-256, links, packing)', run: () => decoded.map((rs, i) => prepareBatch(rs, anchorOf(i), keys)) },
        { name: 'object path: whole task but the signatures', run: (bs) => bs.map((b, i) => verifyRawRowsByObjects({ ...b, anchor: anchorOf(i), want: [] }, keys, noSig)) },
        { name: 'SHA-256 of a row\'s bytes: crypto.createHash', run: () => hashInput.map((hs) => hs.map((h) => crypto.createHash('sha256').update(h).digest())) },
        { name: 'SHA-256 of a row\'s bytes: crypto.hash (one-shot), a Buffer', run: () => hashInput.map((hs) => hs.map((h) => oneShot?.('sha256', h, 'buffer'))) },
        { name: 'SHA-256 of a row\'s bytes: crypto.hash (one-shot), latin1 (the path\'s)', run: () => hashInput.map((hs) => hs.map((h) => oneShot?.('sha256', h, 'binary'))) },
        ...(sodium ? [{ name: 'SHA-256 of a row\'s bytes: libsodium crypto_hash_sha256', run: () => hashInput.map((hs) => hs.map((h) => sodium(digest, h))) }] : []),
        { name: 'byte path: canonical form of the payload (bytes → bytes)', run: (bs) => bs.map((b) => canonicalizeAll(b, scratch)) },
        { name: 'byte path: whole task but the signatures', run: (bs) => bs.map((b, i) => verifyRawRows({ ...b, anchor: anchorOf(i), want: [] }, keys, noSig)) },
        { name: 'the signatures alone (libsodium), for scale', run: () => decoded.map((rs, i) => verifyWork(prepareBatch(rs, anchorOf(i), keys).work, (slot, m, s) => keys.verifySlot(slot, m, s))) },
      ];
      console.log(`${n} rows in ${batches.length} batches, payloads of ${payloadChars.toFixed(0)} characters on average; ${rounds} rounds, median; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
      const only = process.env.STAGES; // a part of a stage's name: only those (for a profile)
      for (const st of stages.filter((x) => !only || x.name.includes(only))) {
        st.run(batches.slice(0, 1)); // warm-up
        const per: number[] = [];
        for (let r = 0; r < rounds; r++) {
          const c0 = cpuUs();
          st.run(batches);
          per.push((cpuUs() - c0) / n);
        }
        console.log(`${median(per).toFixed(2).padStart(7)} µs  ${st.name}`);
      }
      console.log(`load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    } finally {
      await sandbox.stop();
    }
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every payload of a batch through the byte canonicaliser (the stage alone). */
function canonicalizeAll(b: RawAuditRows, out: Buffer): number {
  const buf = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  let p = 0;
  let total = 0;
  while (p < buf.length) {
    p += 2;
    for (let f = 0; f < 8; f++) {
      const len = buf.readInt32BE(p);
      p += 4;
      if (f === 3 && len > 0) {
        const from = b.payload === 'jsonb' ? p + 1 : p;
        total += canonicalPayloadInto(buf, from, p + len, out, 0);
      }
      if (len > 0) p += len;
    }
  }
  return total;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
