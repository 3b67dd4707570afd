/**
 * copyToBuffer (COPY … TO STDOUT gathered into one buffer, no object per message) on a real
 * Postgres: the same bytes as pg-copy-streams gives for the same statement — many messages,
 * many reads of the socket, notices amid the data — and the server's error mid-stream as the
 * query's error, with the connection usable afterwards.
 */
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { copyToBuffer } from '../../src/sources/copy-to-buffer';
import { createTestDatabase } from '../helpers/pg';

let db: { url: string; drop: () => Promise<void> };
let client: Client;

beforeAll(async () => {
  db = await createTestDatabase('copybuf');
  client = new Client({ connectionString: db.url });
  await client.connect();
  await client.query(`CREATE TABLE t (id bigint primary key, body text, doc jsonb);
    INSERT INTO t SELECT g, repeat(chr(65 + g % 26), g % 700), jsonb_build_object('g', g, 'é', 'ü' || g) FROM generate_series(1, 20000) g;
    CREATE FUNCTION noisy(i bigint) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
      IF i % 1000 = 0 THEN RAISE NOTICE 'row %', i; END IF;
      RETURN i;
    END $$;
    CREATE FUNCTION fails_at(i bigint, at bigint) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
      IF i = at THEN RAISE EXCEPTION 'stopped at row %', i; END IF;
      RETURN i;
    END $$;`);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** The bytes pg-copy-streams gives for `sql`: the reference. */
function reference(sql: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = client.query(copyTo(sql));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

function gathered(sql: string, sizeHint?: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = client.query(copyToBuffer(sql, sizeHint));
    s.on('end', () => resolve(s.bytes()));
    s.on('error', reject);
    s.resume();
  });
}

test.each([
  ['binary, many reads of the socket', `COPY (SELECT id, body, doc FROM t ORDER BY id) TO STDOUT (FORMAT binary)`, undefined],
  ['text, a buffer that grows many times', `COPY (SELECT id, body, doc FROM t ORDER BY id) TO STDOUT`, 1],
  ['binary, one row', `COPY (SELECT id, body, doc FROM t WHERE id = 699) TO STDOUT (FORMAT binary)`, undefined],
  ['binary, no rows', `COPY (SELECT id FROM t WHERE id < 0) TO STDOUT (FORMAT binary)`, undefined],
  ['notices amid the data', `COPY (SELECT noisy(id), body FROM t ORDER BY id) TO STDOUT (FORMAT binary)`, undefined],
])('%s: the bytes pg-copy-streams gives', async (_name, sql, hint) => {
  const want = await reference(sql);
  const got = await gathered(sql, hint);
  expect(got.length).toBe(want.length);
  expect(Buffer.from(got).equals(want)).toBe(true);
  // Its own buffer, not much larger than the data (it may be transferred whole to another thread).
  expect(got.buffer.byteLength).toBeLessThanOrEqual(Math.max(1024, Math.floor(got.length * 1.125)));
  // The connection is pg's again.
  expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
});

test("the server's error after rows were sent fails the query; the connection stays usable", async () => {
  const sql = `COPY (SELECT fails_at(id, 15000), body FROM t ORDER BY id) TO STDOUT (FORMAT binary)`;
  await expect(gathered(sql)).rejects.toThrow('stopped at row 15000');
  expect((await client.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 20000 }]);
  // And the next COPY on it is whole.
  const again = `COPY (SELECT id FROM t WHERE id <= 10) TO STDOUT (FORMAT binary)`;
  expect(Buffer.from(await gathered(again)).equals(await reference(again))).toBe(true);
});

test('an error before any row (a statement the server rejects)', async () => {
  await expect(gathered(`COPY (SELECT nope FROM t) TO STDOUT (FORMAT binary)`)).rejects.toThrow(/column "nope" does not exist/);
  expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
});

test('the bytes past the data in the handed-over buffer are zeros, not memory this process used before', async () => {
  // The buffer is not zeroed when made (every byte of the data is written); what it does not
  // hold is zeroed before it may go, whole, to another thread. Memory freed just before, full of
  // a marker, is what the allocator hands out next.
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const sql = `COPY (SELECT id, body FROM t WHERE id <= 150 ORDER BY id) TO STDOUT (FORMAT binary)`;
  const size = (await reference(sql)).length;
  const hint = size + Math.floor(size / 10);
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 50; i++) Buffer.allocUnsafeSlow(hint).fill(0xab);
    gc();
    const got = await gathered(sql, hint);
    expect(got.length).toBe(size);
    // Within an eighth: the buffer is kept, not copied, and its tail is the part that matters.
    expect(got.buffer.byteLength).toBe(hint);
    const tail = new Uint8Array(got.buffer, got.byteOffset + got.length);
    expect(tail.length).toBeGreaterThan(0);
    expect(tail.every((b) => b === 0)).toBe(true);
  }
});
