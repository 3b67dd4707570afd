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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { builtinChecks, registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { rebaseConfigPaths } from '../../src/config/paths';
import { runAudit } from '../../src/app/audit';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import type { CheckResult, Finding } from '../../src/core/types';
import { expectFreshBuild } from '../helpers/build';
import { adminUrl, createTestDatabase } from '../helpers/pg';
import { waitFor } from '../daemon/helpers';
import { sql } from './helpers';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
const ROWS = 1_000_000;
/** Ten ranges of 100 000 rows: (0, 100000], (100000, 200000], … */
const RANGE_ROWS = 100_000;
const REPLICAS = ['r1', 'r2', 'r3'];

let root: string;
let sb: Sandbox;
let qdb: { url: string; drop: () => Promise<void> };
let buildFigures = '';
const children = new Map<string, ChildProcess>();
const logs = new Map<string, string>();

function writeConfig(dir: string, edit: (raw: Record<string, unknown>) => void): string {
  const raw = parse(readFileSync(sb.configPath, 'utf8')) as Record<string, unknown>;
  rebaseConfigPaths(raw, dirname(sb.configPath), dir);
  const checks: Record<string, unknown> = Object.fromEntries(builtinChecks.map((c) => [c.meta.id, { enabled: false }]));
  // Generous: a loaded CI machine verifies a few thousand rows a second.
  checks['receipt-chain'] = { timeout: '40m', options: { range_rows: RANGE_ROWS, range_timeout: '15m' } };
  raw.checks = checks;
  edit(raw);
  const file = join(dir, 'audit.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

function startReplica(name: string, config: string): void {
  const child = spawn(process.execPath, [CLI, 'daemon', '--config', config, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AEGIS_AUDIT_REPLICA: name, AEGIS_AUDIT_LOG_LEVEL: 'info' },
  });
  logs.set(name, '');
  const append = (c: Buffer) => logs.set(name, ((logs.get(name) ?? '') + c.toString()).slice(-200_000));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  children.set(name, child);
}

/** CPU seconds (user + system, every thread) of a replica so far, from /proc. */
function cpuSeconds(name: string): number {
  try {
    const f = readFileSync(`/proc/${children.get(name)?.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The replicas' exit status and log tails, for a wait that timed out. */
function replicasState(): string {
  return [...children].map(([name, c]) => `--- ${name} (exit ${c.exitCode ?? '-'}, signal ${c.signalCode ?? '-'}):\n${(logs.get(name) ?? '').slice(-3_000)}`).join('\n');
}

/** waitFor, and on its timeout the ranges' state and what the replicas said. */
async function waitForReplicas<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs: number, everyMs: number): Promise<T> {
  try {
    return await waitFor(fn, what, timeoutMs, everyMs);
  } catch (e) {
    const parts = await sql(qdb.url, 'SELECT idx, replica, attempts, started_at, finished_at FROM aegis_fleet.fleet_parts ORDER BY idx').catch((x: unknown) => String(x));
    throw new Error(`${(e as Error).message}\nranges: ${JSON.stringify(parts)}\n${replicasState()}`);
  }
}

/** What a failing finding says: everything that must agree between one process and the ranges. */
const failing = (r: CheckResult) =>
  r.findings
    .filter((f: Finding) => f.severity !== 'info')
    .map((f) => ({ messageId: f.messageId, resource: f.resource, message: f.message, evidence: f.evidence }))
    .sort((a, b) => a.resource.localeCompare(b.resource));

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
  for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
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
  const expected = failing(one);
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
  for (const r of REPLICAS) startReplica(r, shared);
  // CPU sampled while the replicas live (a process's /proc entry goes with it).
  const cpu = new Map(REPLICAS.map((r) => [r, 0]));
  const latest = await waitForReplicas(
    async () => {
      for (const r of REPLICAS) cpu.set(r, Math.max(cpu.get(r) ?? 0, cpuSeconds(r) || 0));
      const exited = [...children].filter(([, c]) => c.exitCode !== null || c.signalCode !== null);
      if (exited.length > 0) throw new Error(`a replica exited before the pass finished: ${exited.map(([n]) => n).join(', ')}\n${replicasState()}`);
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
  expect(failing(latest)).toEqual(expected);
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
