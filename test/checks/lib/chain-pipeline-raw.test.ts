/**
 * Raw batches from a real Postgres (COPY binary), decoded, hashed, linked and verified on the
 * worker threads, give exactly the verdicts of verifyBatch() over the rows pg parses: the same
 * broken rows with the same problems in the same order, the same unknown-key tallies, the same
 * joins across batches, the same row hashes for the ids asked for — and this thread only reads.
 */
import { Client } from 'pg';
import { ChainVerifier, verifyStream, type ChunkVerdict } from '../../../checks/lib/chain-pipeline';
import { verifyBatch } from '../../../checks/lib/chain-verify';
import { KeyRing } from '../../../checks/lib/ed25519';
import { postgresSchema } from '../../../src/config/schema';
import type { AuditRow } from '../../../src/core/sources';
import { PostgresAuditDb } from '../../../src/sources/postgres';
import { AuditLogBuilder, TestKey, referenceRowHash } from '../../fakes';
import { createTestDatabase } from '../../helpers/pg';

const receipt = TestKey.generate();
const root = TestKey.generate();
const stranger = TestKey.generate();
const N = 2600;

let db: { url: string; drop: () => Promise<void> };
let src: PostgresAuditDb;

/** A chain with every kind of broken row Postgres can hold, some on batch edges. */
function brokenChain(n: number): AuditRow[] {
  const rows = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(n).rows.map((r) => ({ ...r }));
  const at = (id: number) => rows[id - 1];
  at(2).signature = at(3).signature; // bad signature
  at(100).payload = { edited: true }; // hash mismatch
  at(1001).prevHash = 'f'.repeat(64); // chain break right after a batch edge
  at(1200).signature = 'not base64'; // malformed
  at(1250).rowHash = 'XYZ'; // row_hash malformed (then the next row's link breaks too)
  for (const id of [401, 402, 403, 2000]) {
    const r = at(id);
    r.keyFingerprint = stranger.fingerprint; // unknown key
    r.signature = stranger.signHash(r.rowHash);
  }
  const resealed = at(1500);
  resealed.payload = { forged: 1 };
  resealed.rowHash = referenceRowHash(resealed.prevHash, resealed); // hash ok, link of 1501 breaks, signature bad
  return rows;
}

const rows = brokenChain(N);

beforeAll(async () => {
  db = await createTestDatabase('pgrawchain');
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query('CREATE TABLE audit_log (id bigint primary key, created_at timestamptz, action text, payload jsonb, prev_hash text, row_hash text, signature text, key_fingerprint text)');
  for (let i = 0; i < rows.length; i += 500) {
    const part = rows.slice(i, i + 500);
    await c.query(
      `INSERT INTO audit_log SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::text[], $8::text[])`,
      [part.map((r) => r.id), part.map((r) => r.createdAt), part.map((r) => r.action), part.map((r) => JSON.stringify(r.payload)), part.map((r) => r.prevHash), part.map((r) => r.rowHash), part.map((r) => r.signature), part.map((r) => r.keyFingerprint)],
    );
  }
  await c.end();
  src = new PostgresAuditDb(postgresSchema.parse({ url: db.url, schema: 'public' }));
});

afterAll(async () => {
  await src?.close();
  await db?.drop();
});

function ring(): KeyRing {
  const k = new KeyRing();
  k.addPem(receipt.publicKeyPem);
  return k;
}

function join(vs: ChunkVerdict[]) {
  const unknown = new Map<string, { rows: number; firstId: number; lastId: number }>();
  for (const v of vs) {
    for (const u of v.unknownKeys) {
      const t = unknown.get(u.fingerprint);
      if (!t) unknown.set(u.fingerprint, { rows: u.rows, firstId: u.firstId, lastId: u.lastId });
      else {
        t.rows += u.rows;
        t.lastId = Math.max(t.lastId, u.lastId);
      }
    }
  }
  return { rows: vs.reduce((a, v) => a + v.rows, 0), broken: vs.flatMap((v) => v.broken), unknown: [...unknown.entries()], last: vs[vs.length - 1]?.last };
}

test.each([
  ['worker threads', { threads: 2, poolAfterRows: 0 }],
  ['this thread', { threads: 0 }],
])('raw batches verified on %s: the verdicts of verifyBatch() over the parsed rows', async (_name, opts) => {
  const parsed: AuditRow[] = [];
  for await (const b of src.streamRows(0, { batchSize: 5000 })) parsed.push(...b);
  expect(parsed).toHaveLength(N);
  const expected = join([{ ...verifyBatch(parsed, null, ring()), targets: [] }]);
  expect(expected.broken.map((b) => b.id)).toEqual([2, 100, 1001, 1200, 1250, 1251, 1500, 1501]);
  const verifier = new ChainVerifier(ring(), opts);
  try {
    const seen: ChunkVerdict[] = [];
    const wanted = [1, 1000, 1001, 2600];
    await verifyStream(src.streamRawRows(0, { batchSize: 1000 }), null, verifier, (v) => (seen.push(v), true), new Set(wanted));
    expect(verifier.pooled).toBe(opts.threads > 0);
    expect(seen.map((v) => v.rows)).toEqual([125, 250, 500, 1000, 725]);
    expect(join(seen)).toEqual(expected);
    expect(seen.flatMap((v) => v.targets)).toEqual(wanted.map((id) => [id, parsed[id - 1].rowHash]));
  } finally {
    await verifier.close();
  }
});

test('a row Postgres holds but the reader refuses (no created_at): the batches before it are reported, then its error', async () => {
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query('CREATE TABLE audit_nulls AS SELECT * FROM audit_log; UPDATE audit_nulls SET created_at = NULL WHERE id = 2100');
  await c.end();
  const s = new PostgresAuditDb(postgresSchema.parse({ url: db.url, schema: 'public', tables: { audit_log: 'audit_nulls' } }));
  const verifier = new ChainVerifier(ring(), { threads: 2, poolAfterRows: 0 });
  try {
    const seen: number[] = [];
    await expect(verifyStream(s.streamRawRows(0, { batchSize: 1000 }), null, verifier, (v) => (seen.push(v.rows), true))).rejects.toThrow(
      /^postgres: audit_nulls row id=2100: timestamp is missing or invalid$/,
    );
    expect(seen).toEqual([125, 250, 500, 1000]);
  } finally {
    await verifier.close();
    await s.close();
  }
});
