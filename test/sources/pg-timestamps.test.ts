/**
 * The audit rows' created_at is parsed by a fast path for the server's UTC form; every value
 * must parse exactly as pg's own parser parses it (a different Date is a different row hash).
 */
import { types } from 'pg';
import { parseTimestamptz } from '../../src/sources/postgres';

const pg = types.getTypeParser(1184, 'text') as (s: string) => unknown;
const same = (s: string) => {
  const a = parseTimestamptz(s);
  const b = pg(s);
  return a instanceof Date && b instanceof Date ? Object.is(a.getTime(), b.getTime()) : Object.is(a, b);
};

test('the UTC forms the server sends, with 0 to 6 fractional digits, across the calendar', () => {
  const bad: string[] = [];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pad = (v: number, w: number) => String(v).padStart(w, '0');
  for (let i = 0; i < 20_000; i++) {
    const frac = rnd(7);
    const s =
      `${pad(rnd(10_000), 4)}-${pad(1 + rnd(12), 2)}-${pad(1 + rnd(31), 2)} ${pad(rnd(24), 2)}:${pad(rnd(60), 2)}:${pad(rnd(60), 2)}` +
      (frac === 0 ? '' : '.' + pad(rnd(10 ** frac), frac)) +
      '+00';
    if (!same(s)) bad.push(s);
  }
  expect(bad).toEqual([]);
});

test.each([
  '2026-11-22 10:00:00+00',
  '2026-11-22 10:00:00.5+00',
  '2026-11-22 10:00:00.999999+00',
  '1969-12-31 23:59:59.999500+00',
  '0099-01-01 00:00:00+00',
  '0001-01-01 00:00:00+00 BC',
  '2026-11-22 10:00:00.123+05:30',
  '2026-11-22 10:00:00-08',
  '1883-11-18 12:00:00+00:53:28',
  '12026-11-22 10:00:00+00',
  'infinity',
  '-infinity',
  '2026-11-22 10:00:00.+00',
  '2026-11-22T10:00:00+00',
  'not a date',
])('%s parses as pg parses it', (s) => {
  expect(same(s)).toBe(true);
});
