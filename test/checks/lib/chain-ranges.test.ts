/**
 * The range split of a receipt-chain pass (checks/lib/chain-ranges.ts): planned ranges cover
 * every id once, and ranges verified apart then joined give exactly what one pass over the
 * same rows gives — tampered rows at range starts, broken links across boundaries, empty
 * ranges, unknown keys and capped findings included.
 */
import { completedPrefix, joinRanges, planRanges, verifyRange, type ChainRange, type RangeResult } from '../../../checks/lib/chain-ranges';
import { ChainVerifier, verifyStream } from '../../../checks/lib/chain-pipeline';
import { KeyRing } from '../../../checks/lib/ed25519';
import type { BrokenRowVerdict, UnknownKeyTally } from '../../../checks/lib/chain-verify';
import type { AuditRow } from '../../../src/core/sources';
import { AuditLogBuilder, TestKey, referenceRowHash } from '../../fakes';

const receipt = TestKey.generate();
const stranger = TestKey.generate();
const ring = new KeyRing();
ring.addPem(receipt.publicKeyPem);

async function* batches(rows: readonly AuditRow[], size = 7): AsyncIterable<AuditRow[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

function chainRows(n: number): AuditRow[] {
  return new AuditLogBuilder({ receiptKey: receipt }).receipts(n).rows;
}

/** One pass over every row, as receipt-chain's first pass verifies them. */
async function onePass(rows: readonly AuditRow[]): Promise<{ broken: BrokenRowVerdict[]; unknown: UnknownKeyTally[]; rows: number }> {
  const broken: BrokenRowVerdict[] = [];
  const unknown = new Map<string, UnknownKeyTally>();
  let n = 0;
  await verifyStream(batches(rows), null, new ChainVerifier(ring, { threads: 0 }), (v) => {
    n += v.rows;
    broken.push(...v.broken);
    for (const u of v.unknownKeys) {
      const t = unknown.get(u.fingerprint);
      if (!t) unknown.set(u.fingerprint, { ...u });
      else {
        t.rows += u.rows;
        t.lastId = u.lastId;
      }
    }
    return true;
  });
  return { broken, unknown: [...unknown.values()], rows: n };
}

/** The same rows verified range by range (in a shuffled order, as replicas finish them), then joined. */
async function byRanges(rows: readonly AuditRow[], ranges: ChainRange[], cap = 1000): Promise<ReturnType<typeof joinRanges>> {
  const results: RangeResult[] = [];
  for (const r of [...ranges].reverse()) {
    const inRange = rows.filter((x) => x.id > r.afterId && x.id <= r.upToId);
    results.push(await verifyRange(r, inRange[0], batches(inRange, 5), new ChainVerifier(ring, { threads: 0 }), { cap, startsChain: r.index === 0 && r.afterId === 0 }));
  }
  results.sort((a, b) => a.index - b.index);
  return joinRanges(results, null);
}

function reseal(r: AuditRow): AuditRow {
  const rowHash = referenceRowHash(r.prevHash, r);
  return { ...r, rowHash, signature: receipt.signHash(rowHash) };
}

describe('planRanges', () => {
  test('covers (afterId, lastId] exactly once, in order, about rowsPerRange rows each', () => {
    const ranges = planRanges({ afterId: 0, lastId: 30_000, rows: 30_000 }, { rowsPerRange: 10_000 });
    expect(ranges).toEqual([
      { index: 0, afterId: 0, upToId: 10_000 },
      { index: 1, afterId: 10_000, upToId: 20_000 },
      { index: 2, afterId: 20_000, upToId: 30_000 },
    ]);
    for (const [input, per] of [
      [{ afterId: 17, lastId: 1_000_003, rows: 400_000 }, 30_000],
      [{ afterId: 0, lastId: 5, rows: 5 }, 1],
      [{ afterId: 0, lastId: 7, rows: 100 }, 2],
    ] as const) {
      const r = planRanges(input, { rowsPerRange: per });
      expect(r[0].afterId).toBe(input.afterId);
      expect(r[r.length - 1].upToId).toBe(input.lastId);
      r.forEach((x, i) => {
        expect(x.index).toBe(i);
        expect(x.upToId).toBeGreaterThan(x.afterId);
        if (i > 0) expect(x.afterId).toBe(r[i - 1].upToId);
      });
    }
  });
  test('sized by rows when ids have gaps, by ids when rows are not counted, and bounded', () => {
    expect(planRanges({ afterId: 0, lastId: 1_000_000, rows: 20_000 }, { rowsPerRange: 10_000 })).toHaveLength(2);
    expect(planRanges({ afterId: 0, lastId: 100_000, rows: null }, { rowsPerRange: 10_000 })).toHaveLength(10);
    expect(planRanges({ afterId: 0, lastId: 100_000 }, { rowsPerRange: 10, maxRanges: 64 })).toHaveLength(64);
    expect(planRanges({ afterId: 9, lastId: 9 }, { rowsPerRange: 10 })).toEqual([]);
    expect(() => planRanges({ afterId: -1, lastId: 9 }, { rowsPerRange: 10 })).toThrow(/bad range bounds/);
    expect(() => planRanges({ afterId: 0, lastId: 9 }, { rowsPerRange: 0 })).toThrow(/rowsPerRange/);
  });
});

describe('completedPrefix', () => {
  test('counts done ranges from the first up to the first gap', () => {
    expect(completedPrefix(4, new Set([0, 1, 3]))).toBe(2);
    expect(completedPrefix(4, new Set([1, 2, 3]))).toBe(0);
    expect(completedPrefix(3, new Set([0, 1, 2]))).toBe(3);
  });
});

describe('ranges verified apart and joined = one pass', () => {
  const ranges = planRanges({ afterId: 0, lastId: 60, rows: 60 }, { rowsPerRange: 20 });

  test('an intact chain: no finding, every row counted, the join ends at the last row', async () => {
    const rows = chainRows(60);
    const j = await byRanges(rows, ranges);
    expect(j).toMatchObject({ rows: 60, broken: [], brokenTotal: 0, unknownKeys: [], last: { id: 60, rowHash: rows[59].rowHash } });
  });

  const cases: [string, (rows: AuditRow[]) => AuditRow[], BrokenRowVerdict['problems'][number]['kind'][][]][] = [
    ['the first row of a range altered', (rows) => rows.map((r) => (r.id === 21 ? { ...r, payload: { altered: true } } : r)), [['hashMismatch']]],
    [
      'the first row of a range altered and resealed: the link from the next row breaks',
      (rows) => rows.map((r) => (r.id === 21 ? reseal({ ...r, payload: { altered: true } }) : r)),
      [['chainBreak']],
    ],
    [
      'a broken link across a boundary (the first row of a range links to another hash)',
      (rows) => rows.map((r) => (r.id === 41 ? reseal({ ...r, prevHash: 'a'.repeat(64) }) : r)),
      [['chainBreak']],
    ],
    ['the last row of a range removed', (rows) => rows.filter((r) => r.id !== 20), [['chainBreak']]],
    ['the first row of a range removed', (rows) => rows.filter((r) => r.id !== 21), [['chainBreak']]],
    ['a whole range removed (an empty range between two)', (rows) => rows.filter((r) => r.id <= 20 || r.id > 40), [['chainBreak']]],
    ['the chain\'s first row links to something other than 64 zeros', (rows) => rows.map((r) => (r.id === 1 ? reseal({ ...r, prevHash: 'b'.repeat(64) }) : r)), [['chainBreak'], ['chainBreak']]],
    ['a bad signature on a range\'s first row', (rows) => rows.map((r) => (r.id === 41 ? { ...r, signature: rows[0].signature } : r)), [['badSignature']]],
    [
      'a range\'s first row both unlinked and altered: one finding naming the link first',
      (rows) => rows.map((r) => (r.id === 41 ? { ...r, prevHash: 'c'.repeat(64) } : r)),
      [['chainBreak', 'hashMismatch']],
    ],
  ];
  test.each(cases)('%s', async (_name, tamper, kinds) => {
    const rows = tamper(chainRows(60));
    const one = await onePass(rows);
    const j = await byRanges(rows, ranges);
    expect(one.broken.map((b) => b.problems.map((p) => p.kind)).slice(0, kinds.length)).toEqual(kinds);
    expect(j.broken).toEqual(one.broken);
    expect(j.brokenTotal).toBe(one.broken.length);
    expect(j.rows).toBe(one.rows);
    expect(j.unknownKeys).toEqual(one.unknown);
  });

  test('rows signed by an unknown key across boundaries are tallied once, as one pass does', async () => {
    const b = new AuditLogBuilder({ receiptKey: receipt }).receipts(15);
    for (let i = 0; i < 30; i++) b.append('receipt_issued', { i }, { key: stranger });
    b.receipts(15);
    const one = await onePass(b.rows);
    const j = await byRanges(b.rows, ranges);
    expect(j.unknownKeys).toEqual(one.unknown);
    expect(j.unknownKeys).toEqual([{ fingerprint: stranger.fingerprint, rows: 30, firstId: 16, lastId: 45 }]);
  });

  test('a range keeps at most `cap` broken rows and counts the rest; boundary breaks are counted too', async () => {
    const rows = chainRows(60).map((r) => (r.id % 2 === 1 ? { ...r, payload: { altered: r.id } } : r));
    const j = await byRanges(rows, ranges, 3);
    const one = await onePass(rows);
    expect(j.brokenTotal).toBe(one.broken.length);
    expect(j.broken.map((b) => b.id)).toEqual([1, 3, 5, 21, 23, 25, 41, 43, 45]);
  });

  test('a join continues from a checkpoint (its last row) and checks that first link too', async () => {
    const rows = chainRows(60);
    const later = planRanges({ afterId: 30, lastId: 60, rows: 30 }, { rowsPerRange: 10 });
    const results: RangeResult[] = [];
    for (const r of later) results.push(await verifyRange(r, rows[r.afterId], batches(rows.filter((x) => x.id > r.afterId && x.id <= r.upToId)), new ChainVerifier(ring, { threads: 0 }), { cap: 10, startsChain: false }));
    expect(joinRanges(results, { id: 30, rowHash: rows[29].rowHash }).broken).toEqual([]);
    const wrong = joinRanges(results, { id: 30, rowHash: 'd'.repeat(64) });
    expect(wrong.broken).toHaveLength(1);
    expect(wrong.broken[0]).toMatchObject({ id: 31, prevId: 30, problems: [{ kind: 'chainBreak' }] });
    expect(() => joinRanges([results[0], results[2]], null)).toThrow(/not consecutive/);
  });

  test('a row outside its range is an error, not a silent pass', async () => {
    const rows = chainRows(30);
    await expect(verifyRange({ index: 0, afterId: 0, upToId: 10 }, rows[0], batches(rows.slice(0, 12)), new ChainVerifier(ring, { threads: 0 }), { cap: 10, startsChain: true })).rejects.toThrow(/outside range/);
  });
});
