/**
 * Starting the job queue, as replicas meet it: several replicas starting at once on an empty
 * database take turns and all come up; a Postgres that is not accepting connections yet (a
 * compose file, a restart) is retried with backoff, each failure logged, until it is.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Client } from 'pg';
import { FleetQueue } from '../../src/fleet/queue';
import { silentLogger } from '../../src/core/logger';
import { createTestDatabase } from '../helpers/pg';

const queues: FleetQueue[] = [];
const dbs: { drop: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close(0)));
  await Promise.all(dbs.splice(0).map((d) => d.drop()));
});

function queueOn(url: string, replica: string, logger = silentLogger(), startTimeoutMs?: number): FleetQueue {
  const q = new FleetQueue({ url, schema: 'aegis_fleet', replica, concurrency: 2, retryLimit: 2, retryDelayMs: 1000, maintenanceIntervalMs: 60_000, logger, startTimeoutMs });
  queues.push(q);
  return q;
}

test('replicas starting together on an empty database all start, and the queue and its tables exist once', async () => {
  for (let round = 0; round < 3; round++) {
    const db = await createTestDatabase('qstart');
    dbs.push(db);
    const started = await Promise.allSettled(['r1', 'r2', 'r3', 'r4'].map((r) => queueOn(db.url, r).start()));
    expect(started.map((s) => (s.status === 'rejected' ? String(s.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok', 'ok']);
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      const tables = await c.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'aegis_fleet' AND table_name IN ('fleet_runs', 'fleet_latest', 'queue') ORDER BY 1`);
      expect(tables.rows.map((r) => r.t)).toEqual(['fleet_latest', 'fleet_runs', 'queue']);
      const q = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM aegis_fleet.queue WHERE name = 'aegis-audit-checks'`);
      expect(q.rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
    await Promise.all(queues.splice(0).map((x) => x.close(0)));
  }
});

test('a Postgres not accepting connections yet is retried until it is, each failure logged without the URL\'s password', async () => {
  const db = await createTestDatabase('qstart');
  dbs.push(db);
  const real = new URL(db.url);
  // A port that refuses connections for the first 1.5 s, then forwards to the real Postgres.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const sockets: Socket[] = [];
  let proxy: Server | undefined;
  const opening = setTimeout(() => {
    proxy = createServer((s) => {
      const up = connect(Number(real.port), real.hostname);
      sockets.push(s, up);
      s.pipe(up).pipe(s);
      s.on('error', () => up.destroy());
      up.on('error', () => s.destroy());
    });
    proxy.listen(port, '127.0.0.1');
  }, 1500);
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }));
  const via = new URL(db.url);
  via.port = String(port);
  try {
    const t0 = Date.now();
    await queueOn(via.toString(), 'late', logger, 20_000).start();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    const retries = lines.map((l) => JSON.parse(l) as { msg: string; attempt: number }).filter((l) => l.msg === 'Starting the job queue failed; retrying');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0].attempt).toBe(1);
    expect(lines.join('')).not.toContain(real.password);
  } finally {
    clearTimeout(opening);
    await Promise.all(queues.splice(0).map((x) => x.close(0)));
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  }
});

test('a start that keeps failing gives up after its time with the error', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const t0 = Date.now();
  await expect(queueOn(`postgres://u:p@127.0.0.1:${port}/none`, 'never', silentLogger(), 2_000).start()).rejects.toThrow(/ECONNREFUSED/);
  expect(Date.now() - t0).toBeLessThan(10_000);
});
