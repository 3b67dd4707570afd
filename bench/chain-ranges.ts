/**
 * receipt-chain's first pass cut into id ranges that replicas verify, against the same pass on
 * one process: N rows of a sandbox chain on a real (embedded) Postgres, tampered at range
 * boundaries, verified
 *   - by one process without the queue (in this process: the reference),
 *   - by 1 `aegis-audit daemon` doing ranges (the same machine's work, cut up),
 *   - by R daemons sharing one queue and state (queue: configured, every other check off),
 * each with its own queue and state database. For each: rows/s from the check's start to its
 * result, the CPU it cost (the auditor's processes, all threads, and Postgres's), and the load
 * average; per replica, the ranges it verified and their rows/s. Then whether each ranged
 * pass's findings are exactly one process's (the tampered boundary rows among them).
 * Asserts nothing (it exits 1 when findings differ).
 *
 *   npm run build && node dist/bench/chain-ranges.js [rows] [--replicas=3] [--range-rows=50000] [--nice=10] [--only=single,1,3] [--clean]
 *
 * --nice: the workers' nice increment in every mode (the daemon's default is 10; one process
 * is run at the same so the comparison is fair). --clean: no tampering. --only: which modes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';
import { parse, stringify } from 'yaml';
import { builtinChecks, registry } from '../checks';
import { loadConfig } from '../src/config/load';
import { rebaseConfigPaths } from '../src/config/paths';
import { runAudit } from '../src/app/audit';
import { buildSandbox, type Sandbox } from '../src/sandbox/build';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';
import type { CheckResult, Finding } from '../src/core/types';
import { cpuOf, mainThreadCpu, postgresCpu } from './lib/proc';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
/** node's flags as the image runs it (the Dockerfile's ENTRYPOINT), for the daemons. */
const NODE_FLAGS: string[] = (() => {
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(resolve(__dirname, '../../Dockerfile'), 'utf8'));
  const argv = m ? (JSON.parse(m[1]) as string[]) : [];
  return argv.slice(1, argv.indexOf('bin/aegis-audit.js')).filter((a) => a.startsWith('--'));
})();
const TICK = 250;
const load = () => loadavg()[0].toFixed(1);
const n = (x: number) => Math.round(x).toLocaleString('en-US').replace(/,/g, ' ');

async function sql<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as T[];
  } finally {
    await c.end();
  }
}

function writeConfig(sb: Sandbox, dir: string, rangeRows: number, edit: (raw: Record<string, unknown>) => void): string {
  const raw = parse(readFileSync(sb.configPath, 'utf8')) as Record<string, unknown>;
  rebaseConfigPaths(raw, dirname(sb.configPath), dir);
  const checks: Record<string, unknown> = Object.fromEntries(builtinChecks.map((c) => [c.meta.id, { enabled: false }]));
  checks['receipt-chain'] = { timeout: '2h', options: { range_rows: rangeRows } };
  raw.checks = checks;
  edit(raw);
  const file = join(dir, 'audit.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

/** JSON with keys sorted (a result read back from Postgres's jsonb has its keys in jsonb's order). */
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : v !== null && typeof v === 'object'
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : JSON.stringify(v);

/** What each failing finding says (canonical JSON): what must agree between one process and the ranges. */
const failing = (r: CheckResult): string[] =>
  r.findings
    .filter((f: Finding) => f.severity !== 'info')
    .map((f) => canonical({ messageId: f.messageId, resource: f.resource, message: f.message, evidence: f.evidence }))
    .sort();
const named = (r: CheckResult) =>
  r.findings
    .filter((f: Finding) => f.severity !== 'info')
    .map((f) => `${f.messageId} ${f.resource}`)
    .sort();

interface Outcome {
  label: string;
  result: CheckResult;
  wallS: number;
  auditorCpuS: number;
  /** Of auditorCpuS, on the processes' main threads. */
  mainCpuS: number;
  pgCpuS: number;
  loadFrom: string;
  loadTo: string;
}

function print(o: Outcome, rows: number): void {
  const verified = o.result.measurements?.find((m) => m.name === 'receipt_chain_verified_rows')?.value ?? rows;
  const us = ((o.auditorCpuS + o.pgCpuS) * 1e6) / verified;
  console.log(
    `${o.label}: ${o.result.status}, ${n(verified)} rows in ${o.wallS.toFixed(1)} s: ${n(verified / o.wallS)} rows/s; ` +
      `CPU ${o.auditorCpuS.toFixed(1)} s auditor (${o.mainCpuS.toFixed(1)} s on main threads) + ${o.pgCpuS.toFixed(1)} s Postgres = ${us.toFixed(0)} µs a row; load average ${o.loadFrom} → ${o.loadTo}`,
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const rows = Number(args.find((a) => !a.startsWith('--')) ?? 1_000_000);
  const replicas = Number(opt('replicas') ?? 3);
  const rangeRows = Number(opt('range-rows') ?? 50_000);
  const nice = opt('nice') ?? '10';
  const only = (opt('only') ?? `single,1,${replicas}`).split(',');
  const tamper = !args.includes('--clean');
  const dir = mkdtempSync(join(tmpdir(), 'bench-ranges-'));
  const pg = await startEmbeddedPostgres();
  const postmaster = pg.pid as number;
  const children: ChildProcess[] = [];
  let failed = false;
  try {
    let t = Date.now();
    const sb = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl, cloud: false });
    console.log(`sandbox of ${n(rows)} rows built in ${((Date.now() - t) / 1000).toFixed(1)} s (load average ${load()}); ranges of ${n(rangeRows)} rows; workers at nice ${nice}; node ${NODE_FLAGS.join(' ')}`);
    if (tamper && rows >= 4 * rangeRows) {
      // At range boundaries: the first row of the second range altered, the first row of the
      // middle one linked elsewhere, the last row of the one before the last removed.
      const mid = Math.floor(rows / rangeRows / 2) * rangeRows;
      const late = (Math.floor(rows / rangeRows) - 1) * rangeRows;
      await sql(sb.postgresUrl, `UPDATE audit_log SET payload = jsonb_set(payload, '{forged}', 'true') WHERE id = $1`, [rangeRows + 1]);
      await sql(sb.postgresUrl, `UPDATE audit_log SET prev_hash = repeat('f', 64) WHERE id = $1`, [mid + 1]);
      await sql(sb.postgresUrl, `DELETE FROM audit_log WHERE id = $1`, [late]);
      console.log(`tampered: row ${rangeRows + 1} altered, row ${mid + 1} linked elsewhere, row ${late} removed (each at a range boundary)`);
    }
    process.env.AEGIS_AUDIT_WORKER_NICE = nice;
    const outcomes: Outcome[] = [];

    if (only.includes('single')) {
      const single = writeConfig(sb, mkdtempSync(join(dir, 'single-')), rangeRows, () => undefined);
      const loaded = loadConfig(single, { registry });
      const [loadFrom, pg0, c0, m0] = [load(), postgresCpu(postmaster), process.cpuUsage(), mainThreadCpu(process.pid)];
      t = Date.now();
      const r = (await runAudit(loaded, registry, { only: ['receipt-chain'] })).results[0];
      const c = process.cpuUsage(c0);
      const o = { label: 'one process, no queue', result: r, wallS: (Date.now() - t) / 1000, auditorCpuS: (c.user + c.system) / 1e6, mainCpuS: mainThreadCpu(process.pid) - m0, pgCpuS: postgresCpu(postmaster) - pg0, loadFrom, loadTo: load() };
      print(o, rows);
      outcomes.push(o);
    }

    for (const count of only.filter((m) => m !== 'single').map(Number)) {
      const db = `bench_ranges_${count}_${outcomes.length}`;
      await sql(pg.adminUrl, `CREATE DATABASE ${db}`);
      const u = new URL(pg.adminUrl);
      u.pathname = `/${db}`;
      const qurl = u.toString();
      const shared = writeConfig(sb, mkdtempSync(join(dir, 'shared-')), rangeRows, (raw) => {
        raw.state = { postgres: { url: qurl, schema: 'aegis_state' } };
        raw.queue = { url: qurl, schema: 'aegis_fleet', concurrency: 2, replica: '${AEGIS_AUDIT_REPLICA}', publish_interval: '1s', maintenance_interval: '5s' };
      });
      const mine: ChildProcess[] = [];
      for (let i = 1; i <= count; i++) {
        const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'daemon', '--config', shared, '--listen', '127.0.0.1:0'], {
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, AEGIS_AUDIT_REPLICA: `r${i}`, AEGIS_AUDIT_LOG_LEVEL: 'warn' },
        });
        mine.push(child);
        children.push(child);
      }
      const daemonsCpu = () => mine.reduce((s, c) => s + cpuOf(c.pid as number), 0);
      const daemonsMain = () => mine.reduce((s, c) => s + mainThreadCpu(c.pid as number), 0);
      // From the check's start (the daemons' own start-up is not the pass's cost).
      // One connection polls (a connection each poll would cost Postgres a backend start each time).
      const poll = new Client({ connectionString: qurl });
      await poll.connect();
      const ask = async <T>(text: string): Promise<T[]> => (await poll.query(text).catch(() => ({ rows: [] }))).rows as T[];
      let base: { cpu: number; main: number; pg: number; load: string } | undefined;
      let result: CheckResult | undefined;
      let last = { cpu: 0, main: 0, pg: 0 };
      while (!result) {
        await new Promise((r) => setTimeout(r, TICK));
        if (mine.some((c) => c.exitCode !== null)) throw new Error(`a daemon exited (${mine.map((c) => c.exitCode).join(', ')})`);
        last = { cpu: daemonsCpu(), main: daemonsMain(), pg: postgresCpu(postmaster) };
        if (!base) {
          const started = await ask(`SELECT 1 FROM aegis_fleet.fleet_runs WHERE check_id = 'receipt-chain'`);
          if (started.length > 0) base = { ...last, load: load() };
          continue;
        }
        result = (await ask<{ result: CheckResult }>(`SELECT result FROM aegis_fleet.fleet_latest WHERE check_id = 'receipt-chain'`))[0]?.result;
      }
      await poll.end();
      const run = (await sql<{ started_at: Date; finished_at: Date }>(qurl, `SELECT started_at, finished_at FROM aegis_fleet.fleet_runs WHERE check_id = 'receipt-chain' AND finished_at IS NOT NULL ORDER BY started_at LIMIT 1`))[0];
      const parts = await sql<{ replica: string; rows: string; seconds: number; ranges: string }>(
        qurl,
        `SELECT replica, sum((result->>'rows')::bigint) AS rows, sum(extract(epoch FROM finished_at - started_at))::float AS seconds, count(*) AS ranges
           FROM aegis_fleet.fleet_parts GROUP BY replica ORDER BY replica`,
      );
      const o: Outcome = {
        label: `${count} ${count === 1 ? 'daemon' : 'daemons'} verifying ranges`,
        result,
        wallS: (new Date(run.finished_at).getTime() - new Date(run.started_at).getTime()) / 1000,
        auditorCpuS: last.cpu - (base as { cpu: number }).cpu,
        mainCpuS: last.main - (base as { main: number }).main,
        pgCpuS: last.pg - (base as { pg: number }).pg,
        loadFrom: (base as { load: string }).load,
        loadTo: load(),
      };
      print(o, rows);
      for (const p of parts) console.log(`  ${p.replica}: ${p.ranges} ranges, ${n(Number(p.rows))} rows in ${p.seconds.toFixed(1)} s verifying: ${n(Number(p.rows) / p.seconds)} rows/s`);
      outcomes.push(o);
      // What the daemons and Postgres cost with no pass running (the queues' polls, publishing, maintenance).
      const idle0 = { cpu: daemonsCpu(), pg: postgresCpu(postmaster) };
      await new Promise((r) => setTimeout(r, 10_000));
      console.log(`  idle afterwards (10 s): daemons ${(((daemonsCpu() - idle0.cpu) / 10) * 100).toFixed(1)} % of a core, Postgres ${(((postgresCpu(postmaster) - idle0.pg) / 10) * 100).toFixed(1)} %`);
      for (const c of mine) c.kill('SIGTERM');
      await Promise.all(mine.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    }

    const reference = outcomes.find((o) => o.label.startsWith('one process'));
    if (reference) {
      const expected = JSON.stringify(failing(reference.result));
      const names = named(reference.result);
      console.log(`one process's findings: ${names.length} failing (${names.join(', ')})`);
      for (const o of outcomes.filter((x) => x !== reference)) {
        const same = JSON.stringify(failing(o.result)) === expected && o.result.status === reference.result.status;
        if (!same) failed = true;
        if (!same) {
          const mine = failing(o.result);
          const theirs = failing(reference.result);
          for (const f of theirs.filter((x) => !mine.includes(x))) console.log(`  only one process's: ${f}`);
          for (const f of mine.filter((x) => !theirs.includes(x))) console.log(`  only the ranges': ${f}`);
          if (o.result.status !== reference.result.status) console.log(`  status ${o.result.status} (${o.result.error ?? ''}), one process's ${reference.result.status}`);
        }
        console.log(`${o.label}: findings ${same ? 'identical to one process\'s' : 'DIFFER from one process\'s'}; ${n(o.wallS > 0 ? reference.wallS / o.wallS * 100 : NaN)} % of one process's rows/s, ${n((o.auditorCpuS + o.pgCpuS) / (reference.auditorCpuS + reference.pgCpuS) * 100)} % of its CPU`);
      }
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
