/**
 * A 1 000 000-row chain verified as ranges by three replicas gives exactly one process's
 * findings. One sandbox chain of 1 000 000 rows on the test Postgres, tampered at range
 * boundaries, verified
 *   - by one process without the queue (runAudit in this process: the ordinary first pass), and
 *   - by three `aegis-audit daemon` processes sharing one queue and state (ten ranges of 100 000 rows),
 * both with their checkpoint in Postgres. The failing findings are identical, the tampered
 * boundary rows among them; both checkpoints end at the chain's last row and agree.
 *
 * Cost (the figures it prints): at load 9-12 on this 2-core machine, building the chain took
 * 115 s of CPU (signing inline, before the writer signed in workers and used COPY), the one
 * process 123 s, the three replicas 126 s. One fixture serves both passes; ranges of 100 000
 * rows keep the queue's share small. The SIGKILL of a replica mid-range is asserted on a
 * smaller chain (chain-ranges.test.ts), where a dead replica's range is retried after a short
 * range_timeout.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import type { CheckResult } from '../../src/core/types';
import { expectFreshBuild } from '../helpers/build';
import { adminUrl, createTestDatabase } from '../helpers/pg';
import { sql } from './helpers';
import { failingFindings, rangesConfig, Replicas } from './ranges';

const ROWS = 1_000_000;
/** Ten ranges of 100 000 rows: (0, 100000], (100000, 200000], … */
const RANGE_ROWS = 100_000;
const REPLICAS = ['r1', 'r2', 'r3'];

let root: string;
let sb: Sandbox;
let qdb: { url: string; drop: () => Promise<void> };
let buildFigures = '';
const replicas = new Replicas();

const writeConfig = (dir: string, edit: (raw: Record<string, unknown>) => void) =>
  // Generous: a loaded CI machine verifies a few thousand rows a second.
  rangesConfig(sb, dir, { timeout: '40m', options: { range_rows: RANGE_ROWS, range_timeout: '15m' } }, edit);

/** CPU seconds (user + system, every thread) of a replica so far, from /proc. */
function cpuSeconds(name: string): number {
  try {
    const f = readFileSync(`/proc/${replicas.children.get(name)?.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The receipt-chain checkpoint saved in a Postgres state schema, without what differs by run (times, the rehash round). */
async function checkpoint(schema: string): Promise<Record<string, unknown>> {
  const rows = await sql<{ value: Record<string, unknown> }>(qdb.url, `SELECT value FROM ${schema}.state WHERE key LIKE 'receipt-chain@%'`);
  expect(rows).toHaveLength(1);
  const { lastId, lastRowHash, lastRootId, rootUpToId, broken, overflow, unknownKeys, brokenRoots, changed, verifiedTotal, passComplete } = rows[0].value;
  return { lastId, lastRowHash, lastRootId, rootUpToId, broken, overflow, unknownKeys, brokenRoots, changed, verifiedTotal, passComplete };
}

beforeAll(async () => {
  expectFreshBuild();
  root = mkdtempSync(join(tmpdir(), 'chain-million-'));
  const t = Date.now();
  const c0 = process.cpuUsage();
  [sb, qdb] = await Promise.all([
    buildSandbox({ dir: join(root, 'sandbox'), seed: 41, rows: ROWS, violations: 'none', adminUrl: adminUrl(), cloud: false }),
    createTestDatabase('million'),
  ]);
  const c = process.cpuUsage(c0);
  buildFigures = `chain of ${ROWS} rows built in ${((Date.now() - t) / 1000).toFixed(1)} s, ${((c.user + c.system) / 1e6).toFixed(1)} s of CPU here (load average ${loadavg()[0].toFixed(1)})`;
  // Tampered at the boundaries: the first row of the second range altered; the first row of the
  // sixth linked elsewhere; the last row of the ninth removed (the tenth's first row links to nothing).
  await sql(sb.postgresUrl, `UPDATE audit_log SET payload = jsonb_set(payload, '{forged}', 'true') WHERE id = $1`, [RANGE_ROWS + 1]);
  await sql(sb.postgresUrl, `UPDATE audit_log SET prev_hash = repeat('f', 64) WHERE id = $1`, [5 * RANGE_ROWS + 1]);
  await sql(sb.postgresUrl, `DELETE FROM audit_log WHERE id = $1`, [9 * RANGE_ROWS]);
}, 1_200_000);

afterAll(async () => {
  replicas.killAll();
  await new Promise((r) => setTimeout(r, 300));
  await sb?.stop();
  await qdb?.drop();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Part {
  idx: number;
  replica: string | null;
  attempts: number;
  started_at: Date;
  finished_at: Date | null;
}

test('1 000 000 rows: three replicas verifying ranges find exactly what one process finds, tampered range boundaries included, and checkpoint the last row', async () => {
  // One process, no queue: the reference (its checkpoint in its own state schema).
  const single = writeConfig(mkdtempSync(join(root, 'single-')), (raw) => {
    raw.state = { postgres: { url: qdb.url, schema: 'aegis_single' } };
  });
  let t = Date.now();
  const c0 = process.cpuUsage();
  const load0 = loadavg()[0];
  const one = (await runAudit(loadConfig(single, { registry }), registry, { only: ['receipt-chain'] })).results[0];
  const c1 = process.cpuUsage(c0);
  const singleFigures = `one process: ${((Date.now() - t) / 1000).toFixed(1)} s, ${((c1.user + c1.system) / 1e6).toFixed(1)} s of CPU (load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)})`;
  expect({ status: one.status, error: one.error }).toEqual({ status: 'fail', error: null });
  const expected = failingFindings(one);
  expect(expected.map((f) => `${f.messageId} ${f.resource}`)).toEqual(
    expect.arrayContaining([`hashMismatch row=${RANGE_ROWS + 1}`, `chainBreak row=${5 * RANGE_ROWS + 1}`, `chainBreak row=${9 * RANGE_ROWS + 1}`]),
  );

  // Three replicas sharing the queue and the state.
  const shared = writeConfig(mkdtempSync(join(root, 'shared-')), (raw) => {
    raw.state = { postgres: { url: qdb.url, schema: 'aegis_state' } };
    raw.queue = { url: qdb.url, schema: 'aegis_fleet', concurrency: 2, replica: '${AEGIS_AUDIT_REPLICA}', expire_grace: '5s', retry_delay: '1s', maintenance_interval: '2s', publish_interval: '1s' };
  });
  t = Date.now();
  const load1 = loadavg()[0];
  for (const r of REPLICAS) replicas.start(r, shared);
  // CPU sampled while the replicas live (a process's /proc entry goes with it).
  const cpu = new Map(REPLICAS.map((r) => [r, 0]));
  const latest = await replicas.waitFor(
    qdb.url,
    async () => {
      for (const r of REPLICAS) cpu.set(r, Math.max(cpu.get(r) ?? 0, cpuSeconds(r) || 0));
      const exited = [...replicas.children].filter(([, c]) => c.exitCode !== null || c.signalCode !== null);
      if (exited.length > 0) throw new Error(`a replica exited before the pass finished: ${exited.map(([n]) => n).join(', ')}\n${replicas.state()}`);
      return (await sql<{ result: CheckResult }>(qdb.url, `SELECT result FROM aegis_fleet.fleet_latest WHERE check_id = 'receipt-chain'`).catch(() => []))[0]?.result;
    },
    'the ranged pass to finish',
    1_500_000,
    1_000,
  );
  const rangedWallS = (Date.now() - t) / 1000;
  const parts = await sql<Part>(qdb.url, 'SELECT * FROM aegis_fleet.fleet_parts ORDER BY idx');
  expect(parts.map((p) => p.idx)).toEqual(Array.from({ length: ROWS / RANGE_ROWS }, (_, i) => i));
  expect(parts.filter((p) => p.finished_at === null)).toEqual([]);

  expect({ status: latest.status, error: latest.error }).toEqual({ status: 'fail', error: null });
  expect(failingFindings(latest)).toEqual(expected);
  for (const r of [one, latest]) expect(r.findings.find((f) => f.messageId === 'freshness')?.evidence).toMatchObject({ verifiedRows: ROWS - 1, lastVerifiedRow: ROWS });
  // Both checkpoints end at the last row and remember the same chain (its broken rows among it).
  const mine = await checkpoint('aegis_state');
  expect(mine).toMatchObject({ lastId: ROWS, verifiedTotal: ROWS - 1, passComplete: true });
  expect(mine).toEqual(await checkpoint('aegis_single'));

  const replicasCpu = [...cpu.values()].reduce((s, x) => s + x, 0);
  // eslint-disable-next-line no-console
  console.log(
    `${buildFigures}; ${singleFigures}; three replicas: ${rangedWallS.toFixed(1)} s from their start, ${replicasCpu.toFixed(1)} s of CPU ` +
      `(load average ${load1.toFixed(1)} → ${loadavg()[0].toFixed(1)}); ranges by replica ${JSON.stringify(parts.reduce<Record<string, number>>((m, p) => ({ ...m, [String(p.replica)]: (m[String(p.replica)] ?? 0) + 1 }), {}))}`,
  );
}, 3_000_000);
