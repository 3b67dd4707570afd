/**
 * receipt-chain's first pass cut into id ranges that replicas verify (queue configured), as
 * operators run it: three `aegis-audit daemon` processes on one Postgres (queue and state),
 * the sandbox's chain of 30 000 rows with tampered rows at range boundaries. The pass's
 * findings are exactly one process's; the ranges were verified by several replicas; a
 * replica SIGKILLed mid-range has its range verified by another.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

const ROWS = 30_000;
/** Six ranges of 5 000 rows: (0, 5000], (5000, 10000], … */
const RANGE_ROWS = 5_000;

let root: string;
let sb: Sandbox;
let qdb: { url: string; drop: () => Promise<void> };
const replicas = new Replicas();


const writeConfig = (dir: string, edit: (raw: Record<string, unknown>) => void) =>
  rangesConfig(sb, dir, { timeout: '150s', options: { range_rows: RANGE_ROWS, range_timeout: '4s' } }, edit);

beforeAll(async () => {
  expectFreshBuild();
  root = mkdtempSync(join(tmpdir(), 'chain-ranges-'));
  [sb, qdb] = await Promise.all([
    buildSandbox({ dir: join(root, 'sandbox'), seed: 31, rows: ROWS, violations: 'none', adminUrl: adminUrl(), cloud: false }),
    createTestDatabase('ranges'),
  ]);
  // Tampered at the boundaries: the first row of a range altered; the first row of another
  // linked elsewhere; the last row of a third removed (the next range's first row links to nothing).
  await sql(sb.postgresUrl, `UPDATE audit_log SET payload = jsonb_set(payload, '{forged}', 'true') WHERE id = 5001`);
  await sql(sb.postgresUrl, `UPDATE audit_log SET prev_hash = repeat('f', 64) WHERE id = 15001`);
  await sql(sb.postgresUrl, `DELETE FROM audit_log WHERE id = 25000`);
}, 240_000);

afterAll(async () => {
  replicas.killAll();
  await new Promise((r) => setTimeout(r, 300));
  await sb?.stop();
  await qdb?.drop();
  rmSync(root, { recursive: true, force: true });
});

interface Part {
  idx: number;
  replica: string | null;
  attempts: number;
  started_at: Date | null;
  finished_at: Date | null;
}

test('three replicas verify a chain as ranges: one process\'s findings, a killed replica\'s range verified elsewhere', async () => {
  // One process, no queue: the reference.
  const single = writeConfig(mkdtempSync(join(root, 'single-')), () => undefined);
  const one = (await runAudit(loadConfig(single, { registry }), registry, { only: ['receipt-chain'] })).results[0];
  expect(one.status).toBe('fail');
  const expected = failingFindings(one);
  expect(expected.map((f) => `${f.messageId} ${f.resource}`)).toEqual(expect.arrayContaining(['hashMismatch row=5001', 'chainBreak row=15001', 'chainBreak row=25001']));

  // Three replicas sharing the queue and the state.
  const shared = writeConfig(mkdtempSync(join(root, 'shared-')), (raw) => {
    raw.state = { postgres: { url: qdb.url, schema: 'aegis_state' } };
    raw.queue = { url: qdb.url, schema: 'aegis_fleet', concurrency: 2, replica: '${AEGIS_AUDIT_REPLICA}', expire_grace: '1s', retry_delay: '1s', maintenance_interval: '1s', publish_interval: '1s' };
  });
  for (const r of ['r1', 'r2', 'r3']) replicas.start(r, shared);

  // A range being verified by a replica that does not coordinate the pass: kill it (SIGKILL), mid-range.
  const victim = await replicas.waitFor(
    qdb.url,
    async () => {
      const coordinator = (await sql<{ replica: string }>(qdb.url, `SELECT replica FROM aegis_fleet.fleet_runs WHERE check_id = 'receipt-chain' AND finished_at IS NULL`).catch(() => []))[0]?.replica;
      if (!coordinator) return undefined;
      const running = await sql<Part>(qdb.url, `SELECT * FROM aegis_fleet.fleet_parts WHERE finished_at IS NULL AND replica IS NOT NULL AND replica <> $1 AND started_at < now() - interval '100 milliseconds'`, [coordinator]).catch(() => []);
      return running[0];
    },
    'a range running on a replica other than the coordinator',
    120_000,
    20,
  );
  replicas.children.get(victim.replica as string)?.kill('SIGKILL');

  // The pass completes: its result is the shared latest.
  const latest = await replicas.waitFor(
    qdb.url,
    async () => (await sql<{ result: CheckResult }>(qdb.url, `SELECT result FROM aegis_fleet.fleet_latest WHERE check_id = 'receipt-chain'`).catch(() => []))[0]?.result,
    'the ranged pass to finish',
    240_000,
    250,
  );
  const parts = await sql<Part>(qdb.url, 'SELECT * FROM aegis_fleet.fleet_parts ORDER BY idx');
  expect(parts.map((p) => p.idx)).toEqual([0, 1, 2, 3, 4, 5]);
  expect(parts.every((p) => p.finished_at !== null)).toBe(true);
  // The killed replica's range was verified by another one.
  const retried = parts.find((p) => p.idx === victim.idx) as Part;
  expect(retried.replica).not.toBe(victim.replica);
  expect(retried.attempts).toBeGreaterThanOrEqual(2);
  // Who verified what is not asserted beyond the killed range: on a loaded machine one survivor may take every
  // other range (a run failed once at load 16 on "at least two replicas"); it is printed.
  // eslint-disable-next-line no-console
  console.log(`chain ranges by replica: ${JSON.stringify(parts.reduce<Record<string, number>>((m, p) => ({ ...m, [String(p.replica)]: (m[String(p.replica)] ?? 0) + 1 }), {}))}; killed ${victim.replica} on range ${victim.idx}`);

  expect({ status: latest.status, error: latest.error }).toEqual({ status: 'fail', error: null });
  expect(failingFindings(latest)).toEqual(expected);
  const fresh = latest.findings.find((f) => f.messageId === 'freshness');
  expect(fresh?.evidence).toMatchObject({ verifiedRows: ROWS - 1, lastVerifiedRow: ROWS });
}, 420_000);
