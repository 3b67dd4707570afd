import { Client } from 'pg';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { PostgresAuditDb } from '../../src/sources/postgres';
import { postgresSchema } from '../../src/config/schema';
import { AuditError } from '../../src/core/errors';
import { createTestDatabase } from '../helpers/pg';
import { freePort } from '../../src/sandbox/embedded-postgres';

let db: { url: string; drop: () => Promise<void> };
let src: PostgresAuditDb;

beforeAll(async () => {
  db = await createTestDatabase('pgsrc');
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query(`CREATE SCHEMA aegis;
    CREATE TABLE aegis.receipts (id bigint primary key, created_at timestamptz, action text, payload jsonb, prev_hash text, row_hash text, signature text, key_fingerprint text);
    CREATE TABLE aegis.hist (fingerprint text primary key, public_key text, promoted_at timestamptz);
    CREATE TABLE aegis.roots (id bigint, created_at timestamptz, up_to_id bigint, root_hash text, signature text, key_fingerprint text);
    CREATE TABLE aegis.keys (id text, prefix text, created_at timestamptz, last_used_at timestamptz, revoked_at timestamptz);`);
  await c.query(`INSERT INTO aegis.receipts SELECT g, '2026-01-01'::timestamptz + g * interval '1 minute', CASE WHEN g % 1000 = 0 THEN 'key_rotated' ELSE 'call' END,
      jsonb_build_object('n', g), 'p' || g, 'h' || g, 's' || g, CASE WHEN g <= 6000 THEN '${OLD}' ELSE '${NEW}' END FROM generate_series(1, 12345) g`);
  await c.query(`INSERT INTO aegis.keys VALUES ('k1', 'acp_abcd', now() - interval '100 days', null, null)`);
  await c.end();
  src = new PostgresAuditDb(postgresSchema.parse({ url: db.url, schema: 'aegis', tables: { audit_log: 'receipts', historical_keys: 'hist', roots: 'roots', api_keys: 'keys' } }));
});

afterAll(async () => {
  await src?.close();
  await db?.drop();
});

const OLD = `sha256:${'0a'.repeat(32)}`;
const NEW = `sha256:${'1b'.repeat(32)}`;

test('reads recent rows, usage and rotations from configured schema and table names', async () => {
  const recent = await src.recentRows(2);
  expect(recent.map((r) => r.id)).toEqual([12345, 12344]);
  expect(recent[0].createdAt).toBeInstanceOf(Date);
  expect(recent[0].payload).toEqual({ n: 12345 });
  const usage = await src.fingerprintUsage();
  expect(usage.map((u) => [u.fingerprint, u.rows, u.firstId, u.lastId])).toEqual([
    [OLD, 6000, 1, 6000],
    [NEW, 6345, 6001, 12345],
  ]);
  // Hashes and fingerprints are fixed-shape columns: anything else enters as a stand-in
  // (untrusted.shaped) that keeps equal values equal and none of the text.
  expect(recent[0].rowHash).toMatch(/^unrecognised value, 6 characters #[0-9a-f]{12}$/);
  expect(recent[1].prevHash).toBe((await src.rowById(12344))?.prevHash);
  expect(recent[1].prevHash).not.toBe(recent[0].prevHash);
  expect((await src.rowsByAction(['key_rotated'])).map((r) => r.id)).toEqual([1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000]);
  expect((await src.firstRow())?.id).toBe(1);
  expect(await src.rowById(999999)).toBeUndefined();
  const keys = [];
  for await (const k of src.apiKeys()) keys.push(k);
  expect(keys).toHaveLength(1);
  expect(keys[0]).not.toHaveProperty('prefix');
});

test('streams every row after a checkpoint in order, in batches (the first an eighth of batchSize, each next twice the last)', async () => {
  let n = 0;
  let last = 100;
  let batches = 0;
  const sizes: number[] = [];
  for await (const batch of src.streamRows(100, { batchSize: 1000 })) {
    batches++;
    sizes.push(batch.length);
    expect(batch.length).toBeLessThanOrEqual(1000);
    for (const r of batch) {
      expect(r.id).toBe(last + 1);
      last = r.id;
      n++;
    }
  }
  expect(n).toBe(12245);
  // 125 + 250 + 500, then eleven of 1000 and the last 370.
  expect(batches).toBe(15);
  expect(sizes.slice(0, 5)).toEqual([125, 250, 500, 1000, 1000]);
  expect(sizes[14]).toBe(370);
});

test('a limited stream stops at its limit and at untilId', async () => {
  const ids: number[] = [];
  for await (const batch of src.streamRows(10, { batchSize: 4, limit: 10, untilId: 15 })) ids.push(...batch.map((r) => r.id));
  expect(ids).toEqual([11, 12, 13, 14, 15]);
  const limited: number[] = [];
  for await (const batch of src.streamRows(10, { batchSize: 4, limit: 6 })) limited.push(batch.length);
  expect(limited).toEqual([1, 2, 3]);
});

test('no statement lives as long as the pass: a slow pass outlasts statement_timeout, and holds no transaction between batches', async () => {
  const slow = new PostgresAuditDb(postgresSchema.parse({ url: db.url, schema: 'aegis', tables: { audit_log: 'receipts' }, statement_timeout: '1s' }));
  const watcher = new Client({ connectionString: db.url });
  await watcher.connect();
  try {
    let n = 0;
    const states = new Set<string>();
    const t0 = Date.now();
    for await (const batch of slow.streamRows(0, { batchSize: 2000 })) {
      n += batch.length;
      // The consumer takes its time (verifying), far past one statement_timeout in all. Each
      // batch's own statement has the whole second: 300 ms could run out on a loaded machine.
      await new Promise((r) => setTimeout(r, 400));
      const { rows } = await watcher.query<{ state: string; xmin: string | null }>(
        `SELECT state, backend_xmin::text AS xmin FROM pg_stat_activity WHERE application_name = 'aegis-audit' AND datname = current_database() AND pid <> pg_backend_pid()`,
      );
      for (const r of rows) states.add(`${r.state}${r.xmin && r.state !== 'active' ? ' holding xmin' : ''}`);
    }
    expect(Date.now() - t0).toBeGreaterThan(2_500);
    expect(n).toBe(12345);
    expect([...states].filter((s) => s.includes('in transaction') || s.includes('holding xmin'))).toEqual([]);
  } finally {
    await watcher.end();
    await slow.close();
  }
});

test('the chain location: server identity, database and its OID, schema.table; and how much lies after a row', async () => {
  const loc = await src.chainLocation();
  expect(loc.systemIdentifier).toMatch(/^\d{10,}$/);
  expect(loc.database).toBe(new URL(db.url).pathname.slice(1));
  expect(loc.databaseOid).toBeGreaterThan(0);
  expect(loc.table).toBe('aegis.receipts');
  expect(loc.systemIdentifierUnavailable).toBeUndefined();
  expect(await src.chainExtent(100)).toEqual({ rowsAfter: 12245, lastId: 12345 });
  expect(await src.chainExtent(12345)).toEqual({ rowsAfter: 0, lastId: 12345 });
  // The highest id alone (one index probe), without counting.
  expect(await src.chainExtent(100, { count: false })).toEqual({ rowsAfter: null, lastId: 12345 });
  expect(await src.chainExtent(12345, { count: false })).toEqual({ rowsAfter: 0, lastId: 12345 });
});

test('without permission for pg_control_system() the server identity is null with the reason, not an error', async () => {
  const role = `noctl_${Date.now().toString(36)}`;
  const admin = new Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'noctl-pw-123'`);
  await admin.query(`GRANT USAGE ON SCHEMA aegis TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA aegis TO ${role}`);
  // Functions live per database: this revokes it in the test database only.
  await admin.query('REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC');
  const u = new URL(db.url);
  u.username = role;
  u.password = 'noctl-pw-123';
  const limited = new PostgresAuditDb(postgresSchema.parse({ url: u.toString(), schema: 'aegis', tables: { audit_log: 'receipts' } }));
  try {
    const loc = await limited.chainLocation();
    expect(loc.systemIdentifier).toBeNull();
    expect(loc.systemIdentifierUnavailable).toMatch(/permission denied for pg_control_system\(\) \(GRANT EXECUTE ON FUNCTION pg_control_system\(\) TO the auditor's role\)/);
    expect(loc.database).toBe(u.pathname.slice(1));
  } finally {
    await limited.close();
    await admin.query('GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC');
    await admin.query(`REVOKE ALL ON ALL TABLES IN SCHEMA aegis FROM ${role}; REVOKE USAGE ON SCHEMA aegis FROM ${role}; DROP ROLE ${role}`);
    await admin.end();
  }
});

test('a stream cut short by the check timeout (aborted signal) is an error, not the end of the table', async () => {
  const ctl = new AbortController();
  const read = async () => {
    let n = 0;
    for await (const batch of src.streamRows(0, { batchSize: 1000, signal: ctl.signal })) {
      n += batch.length;
      ctl.abort();
    }
    return n;
  };
  await expect(read()).rejects.toMatchObject({ code: 'AUDIT_ERR_TIMEOUT', source: 'postgres', message: expect.stringMatching(/^postgres: streaming audit rows: stopped/) });
  // The client went back to the pool: the source still answers.
  expect((await src.recentRows(1))[0].id).toBe(12345);
});

test('a missing table is an error naming the configured tables', async () => {
  const bad = new PostgresAuditDb(postgresSchema.parse({ url: db.url, schema: 'aegis' }));
  try {
    await expect(bad.recentRows(1)).rejects.toThrow(/postgres: reading recent audit rows: table not found in schema "aegis" \(configured tables: audit_log=audit_log/);
  } finally {
    await bad.close();
  }
});

test('an unreachable Postgres is SOURCE_UNAVAILABLE with the fault and no credentials', async () => {
  const port = await freePort();
  const down = new PostgresAuditDb(postgresSchema.parse({ url: `postgres://auditor:TopSecretPw123@127.0.0.1:${port}/audit`, connect_timeout: '2s' }));
  let err: unknown;
  try {
    await down.recentRows(1);
  } catch (e) {
    err = e;
  } finally {
    await down.close();
  }
  expect(err).toBeInstanceOf(AuditError);
  expect((err as AuditError).code).toBe('AUDIT_ERR_SOURCE_UNAVAILABLE');
  expect((err as AuditError).reason).toBe('connection_refused');
  expect((err as Error).message).toMatch(/^postgres: reading recent audit rows: connection refused/);
  expect((err as Error).message).not.toContain('TopSecretPw123');
});

test('a Postgres that stops answering mid-session is a timeout within a bound, and close() returns', async () => {
  // A proxy that forwards the handshake and the first query, then swallows what the client sends:
  // the server's statement_timeout cannot fire for a query it never receives.
  const target = new URL(db.url);
  let frozen = false;
  const sockets = new Set<Socket>();
  const proxy = createServer((c) => {
    const up = netConnect(Number(target.port), target.hostname);
    sockets.add(c).add(up);
    c.on('data', (d) => {
      if (!frozen) up.write(d);
    });
    up.on('data', (d) => c.write(d));
    c.on('error', () => undefined);
    up.on('error', () => undefined);
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const u = new URL(db.url);
  u.port = String((proxy.address() as AddressInfo).port);
  const hung = new PostgresAuditDb(postgresSchema.parse({ url: u.toString(), schema: 'aegis', tables: { audit_log: 'receipts' }, statement_timeout: '500ms' }));
  try {
    expect((await hung.recentRows(1))[0].id).toBe(12345);
    frozen = true;
    const t0 = Date.now();
    await expect(hung.recentRows(1)).rejects.toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', source: 'postgres', reason: 'timeout', message: 'postgres: reading recent audit rows: timed out: no answer within 1000 ms' });
    // Functional bounds for a loaded machine (the default statement timeout is 30 s; a close without one would hang).
    expect(Date.now() - t0).toBeLessThan(15_000);
    const c0 = Date.now();
    await hung.close();
    expect(Date.now() - c0).toBeLessThan(15_000);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => proxy.close(r));
  }
});
