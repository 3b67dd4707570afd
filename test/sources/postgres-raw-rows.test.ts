/**
 * The raw reader (streamRawRows: `COPY … (FORMAT binary)` batches, decoded on a worker thread)
 * gives exactly the rows the parsed reader (streamRows: pg's own parsers) gives — values,
 * batches and errors — on a real Postgres, for ordinary rows and hostile ones: NULLs, odd
 * timestamps (BC, years 50 and 10000, microseconds, infinity), non-hex hashes, unicode and
 * escapes in payloads, int4 ids, a json (not jsonb) payload. A table whose columns have other
 * types is read by the parsed reader.
 */
import { Client } from 'pg';
import { PostgresAuditDb } from '../../src/sources/postgres';
import { postgresSchema } from '../../src/config/schema';
import { decodeAuditRows } from '../../src/core/raw-audit-rows';
import type { AuditRow, RawAuditRows, StreamRowsOptions } from '../../src/core/sources';
import { createTestDatabase } from '../helpers/pg';

let db: { url: string; drop: () => Promise<void> };
const sources: PostgresAuditDb[] = [];

const COLS = 'created_at timestamptz, action text, payload jsonb, prev_hash text, row_hash text, signature text, key_fingerprint text';
const FP = `sha256:${'ab'.repeat(32)}`;
const H = 'c'.repeat(64);

beforeAll(async () => {
  db = await createTestDatabase('pgraw');
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query(`CREATE TABLE plain (id bigint primary key, ${COLS});
    CREATE TABLE small_ids (id int primary key, ${COLS});
    CREATE TABLE json_payload (id bigint primary key, created_at timestamptz, action text, payload json, prev_hash text, row_hash text, signature text, key_fingerprint varchar(80));
    CREATE TABLE other_types (id numeric primary key, created_at timestamp, action text, payload jsonb, prev_hash text, row_hash text, signature text, key_fingerprint text);
    CREATE TABLE null_time (id bigint primary key, ${COLS});
    CREATE TABLE infinite_time (id bigint primary key, ${COLS});
    CREATE TABLE huge_id (id bigint primary key, ${COLS});`);
  // Ordinary rows, then hostile ones.
  await c.query(`INSERT INTO plain SELECT g, '2026-01-01 00:00:00.123456+00'::timestamptz + g * interval '1.001 second', 'call', jsonb_build_object('n', g, 'b', g % 2 = 0, 'f', g / 7.0), '${H}', md5(g::text) || md5(g::text), 'sig' || g, '${FP}' FROM generate_series(1, 2500) g`);
  await c.query(
    `INSERT INTO plain VALUES
      (3001, '0044-03-15 12:00:00.999999+00 BC', NULL, NULL, NULL, NULL, NULL, NULL),
      (3002, '0050-01-01 00:00:00.0005+00', '', 'null', '', 'XYZ', '', ''),
      (3003, '10000-01-01 00:00:00+00', 'tab\there "quoted" \\ back', '{"é": "\\u00e9\\n\\t\\"", "a": [1.0, 1e300, -0, 0.1], "emoji": "😀", "ctl": "\\u0001"}', $1, $2, $3, 'sha256:XYZ'),
      (3004, '1969-12-31 23:59:59.9995+00', 'long ' || repeat('x', 5000), '[1, "two", {"three": 3}]', '${H}', '${H}', 'c2ln', '${FP}'),
      (3005, '2026-06-01 10:00:00+05:30', 'offset', '"just a string"', '${H}', '${H}', 'c2ln', '${FP}')`,
    ['<script>alert(1)</script>', 'x'.repeat(300), 'not base64 at all'],
  );
  await c.query(`INSERT INTO small_ids SELECT g, now(), 'a', '{}', '${H}', '${H}', 's', '${FP}' FROM generate_series(1, 30) g`);
  await c.query(`INSERT INTO json_payload VALUES (1, now(), 'a', '{"b": 1,  "a" : [1.50, 2]}', '${H}', '${H}', 's', '${FP}'), (2, now(), 'a', '{"dup": 1, "dup": 2}', '${H}', '${H}', 's', '${FP}')`);
  await c.query(`INSERT INTO other_types VALUES (1, '2026-01-01', 'a', '{}', '${H}', '${H}', 's', '${FP}')`);
  await c.query(`INSERT INTO null_time VALUES (1, now(), 'a', '{}', '${H}', '${H}', 's', '${FP}'), (2, NULL, 'a', '{}', '${H}', '${H}', 's', '${FP}')`);
  await c.query(`INSERT INTO infinite_time VALUES (1, 'infinity', 'a', '{}', '${H}', '${H}', 's', '${FP}')`);
  await c.query(`INSERT INTO huge_id VALUES (1, now(), 'a', '{}', '${H}', '${H}', 's', '${FP}'), (9007199254740993, now(), 'a', '{}', '${H}', '${H}', 's', '${FP}')`);
  await c.end();
});

afterAll(async () => {
  for (const s of sources) await s.close();
  await db?.drop();
});

function source(table: string): PostgresAuditDb {
  const s = new PostgresAuditDb(postgresSchema.parse({ url: db.url, schema: 'public', tables: { audit_log: table, historical_keys: 'h', roots: 'r', api_keys: 'k' } }));
  sources.push(s);
  return s;
}

/** A row as a plain value, so Dates (also invalid ones) compare by their time. */
const plain = (r: AuditRow) => ({ ...r, createdAt: r.createdAt.getTime() });

async function parsed(s: PostgresAuditDb, after: number, opts: StreamRowsOptions): Promise<AuditRow[][]> {
  const out: AuditRow[][] = [];
  for await (const b of s.streamRows(after, opts)) out.push(b);
  return out;
}

async function raw(s: PostgresAuditDb, after: number, opts: StreamRowsOptions): Promise<{ batches: AuditRow[][]; kinds: string[] }> {
  const batches: AuditRow[][] = [];
  const kinds: string[] = [];
  for await (const b of s.streamRawRows(after, opts)) {
    if (Array.isArray(b)) {
      kinds.push('parsed');
      batches.push(b);
      continue;
    }
    const r = b as RawAuditRows;
    kinds.push('raw');
    const rows = decodeAuditRows(r);
    // What the reading thread found without decoding agrees with the rows.
    expect({ rows: r.rows, lastId: r.lastId, lastRowHash: r.lastRowHash }).toEqual({ rows: rows.length, lastId: rows[rows.length - 1].id, lastRowHash: rows[rows.length - 1].rowHash });
    // A buffer of its own, never a slice of Node's shared pool, and not much larger than its rows: it may be transferred to another thread.
    expect(r.data.buffer.byteLength).toBeLessThanOrEqual(Math.floor(r.data.byteLength * 1.125) + 64);
    batches.push(rows);
  }
  return { batches, kinds };
}

test.each([
  ['plain', 0, { batchSize: 1000 }],
  ['plain', 2400, { batchSize: 64 }],
  ['plain', 100, { batchSize: 300, limit: 1000, untilId: 900 }],
  ['plain', 0, { batchSize: 5000, limit: 0 }],
  ['small_ids', 0, { batchSize: 7 }],
  ['json_payload', 0, {}],
])('%s after %d %j: the same rows in the same batches as the parsed reader', async (table, after, opts) => {
  const s = source(table);
  const expected = await parsed(s, after, opts);
  const got = await raw(s, after, opts);
  expect(got.kinds.every((k) => k === 'raw')).toBe(true);
  expect(got.batches.map((b) => b.map(plain))).toEqual(expected.map((b) => b.map(plain)));
  if (table === 'plain' && after === 2400) {
    // The hostile rows are among them, and read as pg reads them.
    const byId = new Map(got.batches.flat().map((r) => [r.id, r]));
    expect(byId.get(3001)).toMatchObject({ action: '', payload: null, prevHash: expect.stringMatching(/^unrecognised value/) });
    expect(byId.get(3001)?.createdAt.getUTCFullYear()).toBe(-43);
    expect(byId.get(3003)?.createdAt.getTime()).toBe(Date.UTC(10000, 0, 1));
    expect(byId.get(3004)?.createdAt.toISOString()).toBe('1969-12-31T23:59:59.999Z');
    expect(byId.get(3003)?.payload).toEqual({ é: 'é\n\t"', a: [1, 1e300, 0, 0.1], emoji: '😀', ctl: '\u0001' });
  }
});

test('a table whose columns are not of the documented types is read by the parsed reader', async () => {
  const s = source('other_types');
  const got = await raw(s, 0, {});
  expect(got.kinds).toEqual(['parsed']);
  expect(got.batches).toEqual(await parsed(s, 0, {}));
});

test.each([
  ['null_time', /^postgres: null_time row id=2: timestamp is missing or invalid$/],
  ['infinite_time', /^postgres: infinite_time row id=1: timestamp is missing or invalid$/],
  ['huge_id', /^postgres: huge_id row: id is not an integer within 2\^53$/],
])('%s: the error the parsed reader gives, once the row is decoded', async (table, message) => {
  const s = source(table);
  await expect(parsed(s, 0, {})).rejects.toThrow(message);
  await expect(raw(s, 0, {})).rejects.toThrow(message);
});

test('a missing table: the raw reader fails as the parsed reader does, naming the configured tables', async () => {
  const s = source('no_such_table');
  const e = await parsed(s, 0, {}).catch((x: Error) => x);
  await expect(raw(s, 0, {})).rejects.toThrow((e as Error).message);
});

test('a column whose type changes under a long-lived source: the next stream reads it as it now is', async () => {
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query(`CREATE TABLE changing AS SELECT * FROM plain WHERE id <= 50`);
  const s = source('changing');
  expect((await raw(s, 0, {})).kinds).toEqual(['raw']);
  await c.query(`ALTER TABLE changing ALTER COLUMN payload TYPE text USING payload::text`);
  await c.end();
  const got = await raw(s, 0, {});
  expect(got.kinds).toEqual(['parsed']);
  expect(got.batches).toEqual(await parsed(s, 0, {}));
  expect(typeof got.batches[0][0].payload).toBe('string');
});

test('a connection the server ends mid-stream (a restart, pg_terminate_backend): the stream fails as a source error, the process lives on', async () => {
  const s = source('plain');
  const admin = new Client({ connectionString: db.url });
  await admin.connect();
  try {
    const batches: number[] = [];
    const read = (async () => {
      for await (const b of s.streamRawRows(0, { batchSize: 100 })) {
        batches.push(Array.isArray(b) ? b.length : (b as RawAuditRows).rows);
        if (batches.length === 2) {
          // The reading connection (and any other of the source's), ended by the server.
          await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'aegis-audit' AND datname = current_database()`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
    await expect(read).rejects.toThrow(/^postgres: /);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.length).toBeLessThan(26);
    // The source still reads afterwards, on a new connection.
    const again = await raw(s, 3000, {});
    expect(again.batches.flat().map((r) => r.id)).toEqual([3001, 3002, 3003, 3004, 3005]);
  } finally {
    await admin.end();
  }
});
