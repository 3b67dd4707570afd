/**
 * The parallel verifier gives exactly the verdicts of verifyBatch() on one thread: the same
 * broken rows with the same problems in the same order, the same unknown-key tallies, the
 * same joins across chunk and batch boundaries — with signatures verified by worker threads
 * (the compiled worker in dist/, which the jest run keeps fresh).
 */
import { ChainVerifier, prestartVerifierPool, verifyStream } from '../../../checks/lib/chain-pipeline';
import { verifyBatch, type BatchVerdict } from '../../../checks/lib/chain-verify';
import { KeyRing } from '../../../checks/lib/ed25519';
import type { AuditRow } from '../../../src/core/sources';
import { AuditLogBuilder, TestKey, referenceRowHash } from '../../fakes';

const receipt = TestKey.generate();
const root = TestKey.generate();
const stranger = TestKey.generate();

/** A chain with every kind of broken row, scattered so some fall on chunk and batch edges. */
function brokenChain(n: number): AuditRow[] {
  const rows = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(n).rows.map((r) => ({ ...r }));
  const at = (id: number) => rows[id - 1];
  at(2).signature = at(3).signature; // bad signature
  at(100).payload = { edited: true }; // hash mismatch
  at(101).prevHash = 'f'.repeat(64); // chain break (right after a chunk edge of 100)
  at(200).signature = 'not base64'; // malformed
  at(250).rowHash = 'XYZ'; // row_hash malformed (then the next row's link breaks too)
  at(300).action = 'lone \uD800 surrogate'; // no canonical form
  for (const id of [401, 402, 403, 777]) {
    const r = at(id);
    r.keyFingerprint = stranger.fingerprint; // unknown key
    r.signature = stranger.signHash(r.rowHash);
  }
  const resealed = at(500);
  resealed.payload = { forged: 1 };
  resealed.rowHash = referenceRowHash(resealed.prevHash, resealed); // hash ok, link of 501 breaks, signature bad
  return rows;
}

function ring(): KeyRing {
  const k = new KeyRing();
  k.addPem(receipt.publicKeyPem);
  return k;
}

async function* batches(rows: AuditRow[], size: number, failAfter?: number): AsyncIterable<AuditRow[]> {
  for (let i = 0; i < rows.length; i += size) {
    if (failAfter !== undefined && i >= failAfter) throw new Error('connection lost');
    yield rows.slice(i, i + size);
  }
}

/** The verdicts joined the way receipt-chain joins them. */
function join(vs: BatchVerdict[]) {
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

const N = 1200;

test.each([
  ['worker threads', { threads: 2, poolAfterRows: 0, chunkRows: 100, niceIncrement: 5 }],
  ['this thread', { threads: 0, chunkRows: 64 }],
])('streamed and verified on %s: the same verdicts as one verifyBatch()', async (_name, opts) => {
  const rows = brokenChain(N);
  const expected = join([verifyBatch(rows, null, ring())]);
  expect(expected.broken.map((b) => b.id)).toEqual([2, 100, 101, 200, 250, 251, 300, 500, 501]);
  const verifier = new ChainVerifier(ring(), opts);
  try {
    const seen: BatchVerdict[] = [];
    const targets: [number, string][] = [];
    await verifyStream(
      batches(rows, 350),
      null,
      verifier,
      (v) => {
        targets.push(...v.targets);
        seen.push(v);
        return true;
      },
      new Set([1, 100, 350, 351, 1200]),
    );
    expect(verifier.pooled).toBe(opts.threads > 0);
    expect(seen.reduce((a, v) => a + v.rows, 0)).toBe(N);
    expect(targets).toEqual([1, 100, 350, 351, 1200].map((id) => [id, rows[id - 1].rowHash]));
    expect(join(seen)).toEqual(expected);
  } finally {
    await verifier.close();
  }
});

test('a stop keeps the record contiguous: nothing after the chunk that stopped is reported', async () => {
  const rows = brokenChain(N);
  const verifier = new ChainVerifier(ring(), { threads: 2, poolAfterRows: 0, chunkRows: 100 });
  try {
    const lasts: number[] = [];
    await verifyStream(batches(rows, 500), null, verifier, (v) => {
      lasts.push((v.last as { id: number }).id);
      return lasts.length < 3;
    });
    expect(lasts).toEqual([100, 200, 300]);
  } finally {
    await verifier.close();
  }
});

test('a source that fails: the rows read before it are verified and reported, then the failure is thrown', async () => {
  const rows = brokenChain(N);
  const verifier = new ChainVerifier(ring(), { threads: 2, poolAfterRows: 0, chunkRows: 100 });
  try {
    const seen: BatchVerdict[] = [];
    await expect(
      verifyStream(batches(rows, 400, 800), null, verifier, (v) => {
        seen.push(v);
        return true;
      }),
    ).rejects.toThrow('connection lost');
    expect(join(seen)).toEqual(join([verifyBatch(rows.slice(0, 800), null, ring())]));
  } finally {
    await verifier.close();
  }
});

test('memory stays bounded: no more chunks wait for their signatures than the verifier allows', async () => {
  const rows = brokenChain(N);
  const verifier = new ChainVerifier(ring(), { threads: 2, poolAfterRows: 0, chunkRows: 50 });
  let read = 0;
  let reported = 0;
  let most = 0;
  async function* counted(): AsyncIterable<AuditRow[]> {
    for (let i = 0; i < rows.length; i += 50) {
      most = Math.max(most, read - reported);
      read += 50;
      yield rows.slice(i, i + 50);
    }
  }
  try {
    await verifyStream(counted(), null, verifier, (v) => {
      reported += v.rows;
      return true;
    });
    expect(reported).toBe(N);
    expect(most).toBeLessThanOrEqual(verifier.maxInFlight * 50);
  } finally {
    await verifier.close();
  }
});

/** Every verdict of a stream of `rows` in batches of `size`, in order. */
async function verdictsOf(verifier: ChainVerifier, rows: AuditRow[], size: number): Promise<BatchVerdict[]> {
  const seen: BatchVerdict[] = [];
  await verifyStream(batches(rows, size), null, verifier, (v) => {
    seen.push(v);
    return true;
  });
  return seen;
}

describe('workers started ahead (prestartVerifierPool)', () => {
  test('a verifier with the same threads takes them up, and only once the pass is long enough to want workers', async () => {
    const rows = brokenChain(N);
    const started = prestartVerifierPool({ threads: 2, niceIncrement: 0 });
    expect(started).toBeDefined();
    const verifier = new ChainVerifier(ring(), { threads: 2, niceIncrement: 0, poolAfterRows: 500, chunkRows: 100, pool: started });
    try {
      // Held, not used: a short run still verifies on this thread.
      expect(verifier.pooled).toBe(false);
      const seen = await verdictsOf(verifier, rows, 300);
      expect(verifier.pooled).toBe(true);
      expect(join(seen)).toEqual(join([verifyBatch(rows, null, ring())]));
      // The verifier owns them now: closing the handle does nothing to them.
      await started?.close();
      const more = await verdictsOf(verifier, rows.slice(0, 600), 300);
      expect(join(more)).toEqual(join([verifyBatch(rows.slice(0, 600), null, ring())]));
    } finally {
      await verifier.close();
    }
  });

  test('a verifier with other threads starts its own; the handle still ends the ones started ahead', async () => {
    const started = prestartVerifierPool({ threads: 1, niceIncrement: 0 });
    const verifier = new ChainVerifier(ring(), { threads: 2, niceIncrement: 0, poolAfterRows: 0, chunkRows: 100, pool: started });
    try {
      const rows = brokenChain(N).slice(0, 400);
      const seen = await verdictsOf(verifier, rows, 200);
      expect(verifier.pooled).toBe(true);
      expect(join(seen)).toEqual(join([verifyBatch(rows, null, ring())]));
    } finally {
      await verifier.close();
      await started?.close();
    }
  });

  test('once closed, a verifier starts no workers, even when told many rows are coming (a count that came late)', async () => {
    const verifier = new ChainVerifier(ring(), { threads: 2, niceIncrement: 0, poolAfterRows: 10 });
    await verifier.close();
    verifier.expect(1_000_000);
    expect(verifier.pooled).toBe(false);
  });

  test('no threads asked for: nothing starts', () => {
    expect(prestartVerifierPool({ threads: 0 })).toBeUndefined();
  });
});
