/**
 * Leader election against the real Postgres of the test run: two daemons share an
 * advisory lock; cutting the leader's lock session hands leadership to the other at its next
 * schedule tick (every second here). How long that takes is a figure for a benchmark
 * (bench/daemon.ts), not an assertion: the test keeps a generous bound only.
 */
import { Client } from 'pg';
import { startDaemon, type Daemon } from '../../src/daemon';
import { silentLogger } from '../../src/core/logger';
import { createTestDatabase } from '../helpers/pg';
import { config, get, sample, stubCheck, testRegistry, waitFor } from './helpers';

let db: { url: string; drop: () => Promise<void> };
const open: Daemon[] = [];

beforeAll(async () => {
  db = await createTestDatabase('leader');
});
afterAll(async () => {
  await Promise.all(open.map((d) => d.close()));
  await db.drop();
});

function replica(name: string, runs: { n: number }) {
  const registry = testRegistry([stubCheck('ticks', async () => void runs.n++, { schedule: '* * * * * *' })]);
  const yaml = `deployment: ${name}\nleader_lock: { url: "${db.url}", key: 4242 }\n`;
  return startDaemon({ loaded: config(yaml, registry), registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
}

async function lockHolderPid(): Promise<number | undefined> {
  const c = new Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = 4242
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    return r.rows[0]?.pid;
  } finally {
    await c.end();
  }
}

async function terminate(pid: number): Promise<void> {
  const c = new Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query('SELECT pg_terminate_backend($1)', [pid]);
  } finally {
    await c.end();
  }
}

test('one replica runs checks; when its lock session dies the other takes over', async () => {
  const runsA = { n: 0 };
  const runsB = { n: 0 };
  const a = await replica('a', runsA);
  open.push(a);
  await a.ready;
  expect(a.isLeader()).toBe(true);
  const b = await replica('b', runsB);
  open.push(b);
  await b.ready;
  expect(b.isLeader()).toBe(false);

  // The standby serves metrics with leader 0 and is ready; it never runs a check.
  const mb = await get(b.address, '/metrics');
  expect(sample(mb.body, 'aegis_compliance_leader')).toBe(0);
  expect(sample(mb.body, 'aegis_compliance_check_status{check="ticks",check_severity="critical",status="pass"}')).toBe(0);
  const rb = await get(b.address, '/readyz');
  expect(rb.status).toBe(200);
  expect(rb.body).toContain('standing by');
  await waitFor(() => runsA.n >= 3, 'the leader to run a few ticks', 30_000);
  expect(runsB.n).toBe(0);
  expect(sample((await get(a.address, '/metrics')).body, 'aegis_compliance_leader')).toBe(1);

  // Cut the leader's lock session, as a dead node or a network partition would.
  const pid = await lockHolderPid();
  expect(pid).toBeDefined();
  await terminate(pid as number);
  // Ticks are a second apart: 20 s is a functional bound (it does take over), not a figure.
  await waitFor(() => b.isLeader(), 'the standby to take the lock', 20_000, 20);
  await waitFor(() => runsB.n >= 1, 'the new leader to run checks', 20_000);
  expect(sample((await get(b.address, '/metrics')).body, 'aegis_compliance_check_status{check="ticks",check_severity="critical",status="pass"}')).toBe(1);

  // The old leader noticed: it stands by and stops running checks.
  await waitFor(async () => sample((await get(a.address, '/metrics')).body, 'aegis_compliance_leader') === 0, 'the old leader to stand by', 20_000);
  const frozen = runsA.n;
  await new Promise((r) => setTimeout(r, 2_200));
  expect(runsA.n).toBe(frozen);
  expect(a.isLeader()).toBe(false);

  // A leader that shuts down releases the lock: the first one takes it back.
  await b.close();
  await waitFor(() => a.isLeader(), 'the first replica to lead again', 20_000, 20);
  await waitFor(() => runsA.n > frozen, 'the first replica to run checks again', 20_000);
});
