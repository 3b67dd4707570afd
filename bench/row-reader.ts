/**
 * How to read the audit log for a long verification pass: the candidates of issue 17, each
 * reading every row of an N-row chain (default 1 000 000) on a real Postgres, alone and with
 * the receipt-chain verification of each batch (hash + signature) in the loop. Prints rows/s
 * per strategy; asserts nothing.
 *
 *   - pg-cursor:  one portal read batch by batch (the old reader: one statement for the pass)
 *   - declare:    BEGIN READ ONLY; DECLARE … CURSOR; one FETCH statement per batch (a
 *                 transaction open for the whole pass, holding back vacuum's xmin)
 *   - keyset:     `WHERE id > $last ORDER BY id LIMIT $n`, each batch its own statement
 *   - keyset+1:   the same, the next batch requested while this one is verified
 *   - copy-text:  keyset batches as `COPY (SELECT …) TO STDOUT` (pg-copy-streams), text format
 *                 parsed here (tabs, backslash escapes)
 *   - copy-binary: the same in binary format (lengths, no escapes; int8 and timestamptz as integers)
 *
 * Besides wall time it prints CPU per row of this process and of the Postgres backend serving
 * it (from /proc), which hold however busy the machine is.
 *   npm run build && node dist/bench/row-reader.js [rows] [batchSize] [rounds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Client, types } from 'pg';
import Cursor from 'pg-cursor';
import { to as copyTo } from 'pg-copy-streams';
import { buildSandbox } from '../src/sandbox/build';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';
import { expectedRowHash } from '../checks/lib/canonical';
import { KeyRing } from '../checks/lib/ed25519';

const COLS = 'id, created_at, action, payload, prev_hash, row_hash, signature, key_fingerprint';
type Raw = { id: string; created_at: Date; action: string; payload: unknown; prev_hash: string; row_hash: string; signature: string; key_fingerprint: string };
type Reader = (c: Client, onBatch: (rows: Raw[]) => void, url: string) => Promise<number>;

const CAST_COLS = 'id::int8, created_at::timestamptz, action::text, payload::jsonb, prev_hash::text, row_hash::text, signature::text, key_fingerprint::text';
const parseTimestamptz = types.getTypeParser(1184) as (s: string) => Date;
const EPOCH_2000_MS = 946_684_800_000;

function copyOut(c: Client, sql: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = c.query(copyTo(sql));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
const unescapeText = (s: string) => (s.includes('\\') ? s.replace(/\\(.)/g, (_m, ch: string) => ESCAPES[ch] ?? ch) : s);

/** COPY text format → rows as the pg client gives them. */
function parseCopyText(buf: Buffer): Raw[] {
  const out: Raw[] = [];
  for (let p = 0; p < buf.length; ) {
    const e = buf.indexOf(10, p);
    const f = buf.toString('utf8', p, e).split('\t');
    p = e + 1;
    out.push({ id: f[0], created_at: parseTimestamptz(f[1]), action: unescapeText(f[2]), payload: JSON.parse(unescapeText(f[3])), prev_hash: f[4], row_hash: f[5], signature: f[6], key_fingerprint: f[7] });
  }
  return out;
}

/** COPY binary format → rows as the pg client gives them (NULLs are not expected in this bench). */
function parseCopyBinary(buf: Buffer): Raw[] {
  const out: Raw[] = [];
  let p = 19 + buf.readInt32BE(15);
  for (;;) {
    if (buf.readInt16BE(p) < 0) break;
    p += 2;
    const field = () => {
      const l = buf.readInt32BE(p);
      const at = p + 4;
      p = at + l;
      return [at, l] as const;
    };
    const [ia] = field();
    const id = String(buf.readBigInt64BE(ia));
    const [ta] = field();
    const created_at = new Date(Math.floor(Number(buf.readBigInt64BE(ta)) / 1000) + EPOCH_2000_MS);
    const [aa, al] = field();
    const [pa, pl] = field();
    const text = () => {
      const [a, l] = field();
      return buf.toString('latin1', a, a + l);
    };
    out.push({ id, created_at, action: buf.toString('utf8', aa, aa + al), payload: JSON.parse(buf.toString('utf8', pa + 1, pa + pl)), prev_hash: text(), row_hash: text(), signature: text(), key_fingerprint: text() });
  }
  return out;
}

function strategies(table: string, batch: number): Record<string, Reader> {
  const keysetSql = `SELECT ${COLS} FROM ${table} WHERE id > $1 ORDER BY id LIMIT $2`;
  const copyKeyset = (parse: (b: Buffer) => Raw[], format: string): Reader => async (c, on) => {
    let last = '0';
    let n = 0;
    for (;;) {
      // COPY takes no parameters: the id is an integer this loop produced.
      const rows = parse(await copyOut(c, `COPY (SELECT ${CAST_COLS} FROM ${table} WHERE id > ${BigInt(last)} ORDER BY id LIMIT ${batch}) TO STDOUT${format}`));
      if (rows.length === 0) break;
      n += rows.length;
      last = rows[rows.length - 1].id;
      on(rows);
      if (rows.length < batch) break;
    }
    return n;
  };
  return {
    'copy-text': copyKeyset(parseCopyText, ''),
    'copy-binary': copyKeyset(parseCopyBinary, ' (FORMAT binary)'),
    'pg-cursor': async (c, on) => {
      const cur = c.query(new Cursor<Raw>(`SELECT ${COLS} FROM ${table} WHERE id > $1 ORDER BY id`, [0]));
      let n = 0;
      for (;;) {
        const rows = await cur.read(batch);
        if (rows.length === 0) break;
        n += rows.length;
        on(rows);
      }
      await cur.close();
      return n;
    },
    declare: async (c, on) => {
      await c.query('BEGIN READ ONLY');
      await c.query(`DECLARE chain NO SCROLL CURSOR FOR SELECT ${COLS} FROM ${table} ORDER BY id`);
      let n = 0;
      for (;;) {
        const { rows } = await c.query<Raw>(`FETCH ${batch} FROM chain`);
        if (rows.length === 0) break;
        n += rows.length;
        on(rows);
      }
      await c.query('COMMIT');
      return n;
    },
    keyset: async (c, on) => {
      let last = '0';
      let n = 0;
      for (;;) {
        const { rows } = await c.query<Raw>(keysetSql, [last, batch]);
        if (rows.length === 0) break;
        n += rows.length;
        last = rows[rows.length - 1].id;
        on(rows);
        if (rows.length < batch) break;
      }
      return n;
    },
    'keyset+1': async (c, on, url) => {
      // Two connections, so the next batch is really fetched while this one is verified.
      const other = new Client({ connectionString: url });
      await other.connect();
      try {
        const clients = [c, other];
        let turn = 0;
        const fetch = (after: string) => clients[turn++ % 2].query<Raw>(keysetSql, [after, batch]).then((r) => r.rows);
        let next = fetch('0');
        let n = 0;
        for (;;) {
          const rows = await next;
          if (rows.length === 0) break;
          n += rows.length;
          next = rows.length < batch ? Promise.resolve([]) : fetch(rows[rows.length - 1].id);
          on(rows);
        }
        return n;
      } finally {
        await other.end();
      }
    },
  };
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const batch = Number(process.argv[3] ?? 5000);
  const rounds = Number(process.argv[4] ?? 2);
  const dir = mkdtempSync(join(tmpdir(), 'bench-reader-'));
  const pg = await startEmbeddedPostgres();
  try {
    const t = Date.now();
    const sandbox = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl, cloud: false });
    console.log(`sandbox with ${rows} rows built in ${((Date.now() - t) / 1000).toFixed(1)} s; batch ${batch}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    try {
      const c = new Client({ connectionString: sandbox.postgresUrl });
      await c.connect();
      c.on('error', () => undefined);
      const backend = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      /** CPU time (ms) of the Postgres backend serving this connection. */
      const backendCpuMs = () => {
        const f = readFileSync(`/proc/${backend}/stat`, 'utf8').split(') ')[1].split(' ');
        return (Number(f[11]) + Number(f[12])) * 10;
      };
      const keys = new KeyRing();
      for (const k of sandbox.plan.receiptKeys) keys.addPem(k.publicKeyPem);
      const verify = (batchRows: Raw[]) => {
        for (const r of batchRows) {
          const row = { id: Number(r.id), createdAt: r.created_at, action: r.action, payload: r.payload, prevHash: r.prev_hash };
          if (expectedRowHash(row) !== r.row_hash) throw new Error(`row ${r.id} does not hash`);
          if (keys.verify(r.key_fingerprint, Buffer.from(r.row_hash, 'hex'), r.signature) !== 'valid') throw new Error(`row ${r.id} does not verify`);
        }
      };
      const all = strategies('public.audit_log', batch);
      for (const mode of ['read only', 'read + verify'] as const) {
        for (let round = 1; round <= rounds; round++) {
          for (const [name, read] of Object.entries(all)) {
            const start = process.hrtime.bigint();
            const cpu0 = process.cpuUsage();
            const server0 = backendCpuMs();
            const n = await read(c, mode === 'read only' ? () => undefined : verify, sandbox.postgresUrl);
            const ms = Number(process.hrtime.bigint() - start) / 1e6;
            const cpu = process.cpuUsage(cpu0);
            const clientUs = (cpu.user + cpu.system) / n;
            const serverUs = ((backendCpuMs() - server0) * 1000) / n;
            console.log(
              `${mode.padEnd(13)} round ${round} ${name.padEnd(11)} ${n} rows in ${(ms / 1000).toFixed(2)} s = ${Math.round(n / (ms / 1000))} rows/s; ` +
                `CPU per row: client ${clientUs.toFixed(1)} µs, server ${serverUs.toFixed(1)} µs (load ${loadavg()[0].toFixed(1)})`,
            );
          }
        }
      }
      await c.end();
    } finally {
      await sandbox.stop();
    }
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
