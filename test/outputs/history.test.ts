import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DirectoryHistoryStore, PostgresHistoryStore, createHistoryStore, type HistoryStore } from '../../src/outputs/history';
import { configSchema } from '../../src/config/schema';
import { createTestDatabase } from '../helpers/pg';
import { sampleReport } from './fixtures';

const run = (n: number, deployment = 'prod') =>
  sampleReport({ deployment, runId: `run-${String(n).padStart(4, '0')}`, finishedAt: new Date(Date.UTC(2026, 10, 22, 10, n)).toISOString() });

async function behavesAsHistory(store: HistoryStore): Promise<void> {
  expect(await store.previous('prod')).toBeUndefined();
  await store.save(run(1));
  await store.save(run(2));
  await store.save(run(1, 'staging'));
  const prev = await store.previous('prod');
  expect(prev?.runId).toBe('run-0002');
  expect(prev).toEqual(run(2)); // the whole report comes back
  expect((await store.previous('staging'))?.runId).toBe('run-0001');
  // Keeps the last `keep` (3) per deployment.
  for (let n = 3; n <= 6; n++) await store.save(run(n));
  expect((await store.previous('prod'))?.runId).toBe('run-0006');
  expect((await store.previous('staging'))?.runId).toBe('run-0001');
  // The trend: open (not waived, not info) findings by severity of the last runs, oldest first.
  // sampleReport has 4 critical and 2 high open findings, one medium waived and one info note.
  const open = { critical: 4, high: 2, medium: 0, low: 0, info: 0 };
  expect(await store.recent('prod', 2)).toEqual([
    { runId: 'run-0005', finishedAt: run(5).finishedAt, open },
    { runId: 'run-0006', finishedAt: run(6).finishedAt, open },
  ]);
  expect((await store.recent('prod', 10)).map((r) => r.runId)).toEqual(['run-0004', 'run-0005', 'run-0006']);
  expect(await store.recent('nowhere', 10)).toEqual([]);
  const clean = sampleReport({ runId: 'run-0007', finishedAt: new Date(Date.UTC(2026, 10, 22, 10, 7)).toISOString(), results: [] });
  await store.save(clean);
  expect((await store.recent('prod', 1))[0]).toEqual({ runId: 'run-0007', finishedAt: clean.finishedAt, open: { critical: 0, high: 0, medium: 0, low: 0, info: 0 } });
}

describe('run history in a directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aegis-history-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('returns the latest report per deployment and keeps the last N', async () => {
    const store = new DirectoryHistoryStore(dir, 3);
    await behavesAsHistory(store);
    expect(readdirSync(join(dir, 'prod')).filter((f) => f.endsWith('.json')).sort()).toEqual([
      '2026-11-22T10-05-00.000Z--run-0005.json',
      '2026-11-22T10-06-00.000Z--run-0006.json',
      '2026-11-22T10-07-00.000Z--run-0007.json',
    ]);
    // Each kept report has its counts beside it; pruned ones lose both.
    expect(readdirSync(join(dir, 'prod')).filter((f) => f.endsWith('.counts')).length).toBe(3);
    await store.close();
  });

  it('counts a report saved without a counts file from the report itself', async () => {
    const store = new DirectoryHistoryStore(dir, 5);
    await store.save(run(1));
    for (const f of readdirSync(join(dir, 'prod'))) if (f.endsWith('.counts')) rmSync(join(dir, 'prod', f));
    expect((await store.recent('prod', 5)).map((r) => [r.runId, r.open.critical])).toEqual([['run-0001', 4]]);
  });

  it('skips a corrupt newest file instead of blocking every later run', async () => {
    const store = new DirectoryHistoryStore(dir, 5);
    await store.save(run(1));
    writeFileSync(join(dir, 'prod', '2099-01-01T00-00-00.000Z--broken.json'), '{ not json');
    expect((await store.previous('prod'))?.runId).toBe('run-0001');
  });

  it('is the default, under <outputs dir>/history/', () => {
    const config = configSchema.parse({ deployment: 'prod', outputs: { dir: '/srv/reports', history_keep: 7 } });
    const store = createHistoryStore(config);
    expect(store).toBeInstanceOf(DirectoryHistoryStore);
    expect((store as DirectoryHistoryStore).dir).toBe('/srv/reports/history');
    expect((store as DirectoryHistoryStore).keep).toBe(7);
    expect((createHistoryStore(config, { outputsDir: '/tmp/out' }) as DirectoryHistoryStore).dir).toBe('/tmp/out/history');
  });
});

describe('run history in Postgres (the auditor own schema)', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase('hist');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('stores reports in <schema>.run_history and keeps the last N per deployment', async () => {
    const store = new PostgresHistoryStore(db.url, 'aegis_audit', 3);
    try {
      await behavesAsHistory(store);
    } finally {
      await store.close();
    }
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      const cols = await c.query(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'aegis_audit' AND table_name = 'run_history' ORDER BY ordinal_position`,
      );
      expect(cols.rows).toEqual([
        { column_name: 'run_id', data_type: 'text' },
        { column_name: 'deployment', data_type: 'text' },
        { column_name: 'finished_at', data_type: 'timestamp with time zone' },
        { column_name: 'report', data_type: 'jsonb' },
      ]);
      const rows = await c.query(`SELECT deployment, run_id FROM aegis_audit.run_history ORDER BY deployment, run_id`);
      expect(rows.rows.map((r) => `${r.deployment}/${r.run_id}`)).toEqual(['prod/run-0005', 'prod/run-0006', 'prod/run-0007', 'staging/run-0001']);
    } finally {
      await c.end();
    }
  });

  it('is chosen when state.postgres is configured', async () => {
    const config = configSchema.parse({ deployment: 'prod', state: { postgres: { url: db.url, schema: 'hist_cfg' } } });
    const store = createHistoryStore(config);
    try {
      expect(store).toBeInstanceOf(PostgresHistoryStore);
      await store.save(run(9));
      expect((await store.previous('prod'))?.runId).toBe('run-0009');
    } finally {
      await store.close();
    }
  });

  it('an unreachable database is a clear error without the password', async () => {
    const store = new PostgresHistoryStore('postgres://auditor:s3cretpassw0rd@127.0.0.1:1/none', 'aegis_audit');
    try {
      const err = await store.previous('prod').then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err).toBeDefined();
      expect(err?.code).toBe('AUDIT_ERR_SOURCE_UNAVAILABLE');
      expect(err?.message).toMatch(/^history: creating the run_history table: /);
      expect(err?.message).not.toContain('s3cretpassw0rd');
    } finally {
      await store.close();
    }
  });
});
