/**
 * The byte path over raw batches (verifyRawRows) against decoding every row into objects first
 * (verifyRawRowsByObjects): the same verdict — broken rows, problems, tallies, last row,
 * targets — or the same error, on COPY tuples built here with every kind of hostile field:
 * NULLs, hashes of the wrong shape or case, signatures that are not base64, unknown keys,
 * actions and payloads that need escaping or have no canonical form, timestamps out of range,
 * ids of other widths, jsonb of another version, JSON that is not JSON.
 */
import { expectedRowHash, GENESIS_HASH } from '../../../checks/lib/canonical';
import type { Anchor } from '../../../checks/lib/chain-verify';
import { KeyRing } from '../../../checks/lib/ed25519';
import { verifyRawRows, verifyRawRowsByObjects, writeIsoDate, type RawRowsTask } from '../../../checks/lib/raw-rows-work';
import { TestKey } from '../../fakes';
import { mulberry32 as rng } from '../../helpers/rng';

const receipt = TestKey.generate();
const other = TestKey.generate();
const stranger = TestKey.generate();
const keys = new KeyRing();
keys.addPem(receipt.publicKeyPem);
keys.addPem(other.publicKeyPem);
const verify = (slot: number, m: Uint8Array, s: Uint8Array) => keys.verifySlot(slot, m, s);

const EPOCH_2000_MS = 946_684_800_000;

type Field = Buffer | null;

function tuple(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(2);
  count.writeInt16BE(fields.length);
  parts.push(count);
  for (const f of fields) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(f === null ? -1 : f.length);
    parts.push(len);
    if (f) parts.push(f);
  }
  return Buffer.concat(parts);
}

const int8 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
};
const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const ts = (d: Date) => int8(BigInt(d.getTime() - EPOCH_2000_MS) * 1000n + 417n);
const txt = (s: string) => Buffer.from(s, 'utf8');

const PAYLOADS = [
  '{"actor": "svc-deploy", "scope": ["read", "write"], "request": {"id": "r-1", "bytes": 1234, "ok": true, "none": null}}',
  '{"b":1,"a":[{"d":2.50,"c":1e3},[]],"":{}}',
  '{"note": "a \\"quoted\\" \\\\ back\\nslash\\u001f", "text": "ünïcödé € 😀"}',
  '{"é": 1, "a": 2}',
  '{"a": 1, "a": 2}',
  '{"x": "\\/\\u0041"}',
  '{"n": 1e400}',
  '{"s": "\\ud800"}',
  '[1, "two", {"three": 3}]',
  '"plain"',
  '-0',
  '123456789012345678901234567890',
  'null',
  '{"deep": ' + '['.repeat(80) + ']'.repeat(80) + '}',
];

interface Built {
  data: Buffer;
  ids: number[];
  error: boolean;
}

/** A batch of `n` rows from `firstId`, chained from `prev`, each row spoilt one way with some probability. */
function batch(r: () => number, firstId: number, n: number, prev: string, payloadKind: 'jsonb' | 'json', spoil: number, fatal = false): Built & { last: string } {
  const tuples: Buffer[] = [];
  const ids: number[] = [];
  let prevHash = prev;
  let error = false;
  for (let k = 0; k < n; k++) {
    const id = firstId + k;
    ids.push(id);
    const createdAt = new Date(Date.UTC(2026, 0, 1) + (id % 1_000_000) * 61_000 + Math.floor(r() * 1000));
    let action = r() < 0.8 ? 'receipt.issued' : ['key "rotated"', 'back\\slash', 'tab\there', 'ünï', '', '\u007f'][Math.floor(r() * 6)];
    const pool = spoil > 0 ? PAYLOADS : PAYLOADS.filter((t) => !t.includes('1e400') && !t.includes('ud800'));
    const text = r() < 0.6 ? PAYLOADS[0] : pool[Math.floor(r() * pool.length)];
    let payloadField: Field = Buffer.concat([payloadKind === 'jsonb' ? Buffer.from([1]) : Buffer.alloc(0), txt(text)]);
    let payload: unknown = null;
    try {
      payload = JSON.parse(text);
    } catch {
      payload = undefined;
    }
    // Now and then a row resealed over another prev_hash: its hash holds, its link breaks.
    const linkTo = spoil > 0 && r() < 0.05 ? 'f'.repeat(64) : prevHash;
    let rowHash: string;
    try {
      rowHash = expectedRowHash({ id, createdAt, action, payload, prevHash: linkTo });
    } catch {
      rowHash = 'ab'.repeat(32);
    }
    let key = r() < 0.9 ? receipt : other;
    let fields: Field[] = [int8(id), ts(createdAt), txt(action), payloadField, txt(linkTo), txt(rowHash), txt(key.signHash(rowHash)), txt(key.fingerprint)];
    if (r() < spoil) {
      const what = Math.floor(r() * 22);
      const f = fields;
      switch (what) {
        case 0: f[4] = txt('f'.repeat(64)); break; // chain break
        case 1: f[5] = txt('0'.repeat(64)); break; // hash mismatch
        case 2: f[5] = txt(rowHash.toUpperCase()); break; // wrong case
        case 3: f[5] = txt(rowHash.slice(0, 40)); break; // short
        case 4: f[5] = null; break;
        case 5: f[4] = null; break;
        case 6: f[6] = txt(other.signHash(rowHash)); break; // bad signature
        case 7: f[6] = txt('not base64'); break;
        case 8: f[6] = txt(key.signHash(rowHash).replace('==', '=A')); break;
        case 9: f[6] = txt(key.signHash(rowHash).slice(0, 86) + '='); break;
        case 10: f[6] = null; break;
        case 11: key = stranger; f[6] = txt(stranger.signHash(rowHash)); f[7] = txt(stranger.fingerprint); break; // unknown key
        case 12: f[7] = txt(receipt.fingerprint.toUpperCase()); break;
        case 13: f[7] = null; break;
        case 14: f[2] = null; action = ''; break;
        case 15: f[3] = null; break; // payload NULL: hash mismatch unless the row hashed null
        case 16: f[1] = ts(new Date(8.64e15)); break; // a timestamp at the edge of Date
        case 17: f[0] = int4(Math.abs(id) < 2 ** 31 ? id : 7); break; // an int4 id
        case 18: f[5] = txt(rowHash.slice(0, 63) + 'g'); break;
        case 19: f[4] = txt(prevHash.slice(0, 63) + 'é'); break;
        case 20: f[6] = txt(key.signHash(rowHash).replace(/[A-Z]/, 'é')); break;
        case 21: f[7] = txt(receipt.fingerprint.slice(0, 70) + '\u0000'); break;
      }
      fields = f;
    }
    if (fatal && k === Math.floor(n / 2)) {
      // One row the reader refuses: the whole batch is bad data (or not JSON at all).
      const bad = Math.floor(r() * 5);
      if (bad === 0) fields[1] = null;
      else if (bad === 1) fields[1] = int8(0x7fffffffffffffffn);
      else if (bad === 2 && payloadKind === 'jsonb') fields[3] = Buffer.concat([Buffer.from([2]), txt('{}')]);
      else if (bad === 3) fields[0] = int8(2n ** 60n);
      else fields[3] = Buffer.concat([payloadKind === 'jsonb' ? Buffer.from([1]) : Buffer.alloc(0), txt('{"a": ')]);
      error = true;
    }
    tuples.push(tuple(fields));
    prevHash = fields[5] === null ? '' : fields[5].toString('utf8');
  }
  return { data: Buffer.concat(tuples), ids, error, last: prevHash };
}

/** Both paths over the same task: their verdicts, or their errors, as comparable values. */
function both(task: RawRowsTask): [unknown, unknown] {
  const run = (f: typeof verifyRawRows) => {
    try {
      // Each path gets its own copy: nothing may depend on the other having read the bytes.
      return JSON.parse(JSON.stringify(f({ ...task, data: Buffer.from(task.data) }, keys, verify)));
    } catch (e) {
      return { threw: `${(e as Error).name}: ${(e as Error).message}` };
    }
  };
  return [run(verifyRawRows), run(verifyRawRowsByObjects)];
}

describe('verifyRawRows (bytes) against verifyRawRowsByObjects', () => {
  test('clean rows: the same verdict, no broken rows, every signature checked', () => {
    const r = rng(1);
    const b = batch(r, 1, 300, GENESIS_HASH, 'jsonb', 0);
    const [fast, slow] = both({ data: b.data, payload: 'jsonb', table: 'audit_log', anchor: null, want: [7, 300] });
    expect(fast).toEqual(slow);
    expect((fast as { broken: unknown[] }).broken).toEqual([]);
    expect((fast as { targets: unknown[] }).targets).toHaveLength(2);
    expect((fast as { rows: number }).rows).toBe(300);
  });

  test('hostile rows, every anchor, jsonb and json: the same verdicts and the same errors', () => {
    const r = rng(42);
    let rowsSeen = 0;
    let brokenSeen = 0;
    let errors = 0;
    for (let round = 0; round < 60; round++) {
      const payloadKind = round % 3 === 2 ? 'json' : 'jsonb';
      const fatal = round % 7 === 3;
      const anchorKind = round % 4;
      const prev = anchorKind === 0 ? GENESIS_HASH : 'c'.repeat(64);
      // Ids of every width: small, near 2^53, negative.
      const base = round % 5 === 1 ? 2 ** 53 - 200 : round % 5 === 3 ? -5000 + 70 * round : 1000 * round;
      const b = batch(r, base + 1, 60, prev, payloadKind, 0.35, fatal);
      const anchor: Anchor = anchorKind === 0 ? null : anchorKind === 1 ? { id: base, rowHash: prev } : anchorKind === 2 ? undefined : { id: base, rowHash: 'not a hash' };
      const want = b.ids.filter(() => r() < 0.1);
      const [fast, slow] = both({ data: b.data, payload: payloadKind, table: 'audit_log', anchor, want });
      expect(fast).toEqual(slow);
      const v = slow as { rows?: number; broken?: unknown[]; badData?: string; threw?: string };
      if (v.rows !== undefined) {
        rowsSeen += v.rows;
        brokenSeen += v.broken?.length ?? 0;
      } else errors++;
    }
    // The comparison covered clean rows, broken rows and refused batches alike.
    expect(rowsSeen).toBeGreaterThan(2000);
    expect(brokenSeen).toBeGreaterThan(300);
    expect(errors).toBeGreaterThan(3);
  });

  test('a batch from a row the previous batch ended on: the link across is checked the same way', () => {
    const r = rng(7);
    const first = batch(r, 1, 50, GENESIS_HASH, 'jsonb', 0);
    const second = batch(r, 51, 50, first.last, 'jsonb', 0);
    for (const rowHash of [first.last, 'e'.repeat(64), 'XYZ']) {
      const [fast, slow] = both({ data: second.data, payload: 'jsonb', table: 'audit_log', anchor: { id: 50, rowHash }, want: [] });
      expect(fast).toEqual(slow);
      expect((fast as { broken: unknown[] }).broken).toHaveLength(rowHash === first.last ? 0 : 1);
    }
  });
});

test('the ISO form of an instant, written as bytes, is toISOString() across the range of Date', () => {
  const r = rng(3);
  const out = Buffer.alloc(40);
  const instants = [0, -1, 1, 8.64e15, -8.64e15, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(1900, 2, 1), Date.UTC(-1, 11, 31, 23, 59, 59, 999), Date.UTC(0, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1)];
  for (let i = 0; i < 5_000; i++) instants.push(Math.floor((r() * 2 - 1) * (i % 2 ? 8.64e15 : 4e12)));
  for (const ms of instants) {
    const end = writeIsoDate(ms, out, 3);
    expect(out.toString('latin1', 3, end)).toBe(new Date(ms).toISOString());
  }
});
