/**
 * receipt-chain's first pass cut into id ranges that replicas verify: N rows of a sandbox chain
 * on a real (embedded) Postgres, verified by 3 `aegis-audit daemon` processes sharing one
 * queue and state (queue: configured, every other check off). Prints each replica's rows/s
 * (rows of the ranges it verified over the time it spent verifying them) and the pass's total
 * (rows over the time from the check's start to its result), with the load average.
 * Asserts nothing.
 *
 *   npm run build && node dist/bench/chain-ranges.js [rows] [--replicas=3] [--range-rows=50000] [--single]
 *
 * --single also times the same pass on one process without the queue, for the ratio.
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
import type { CheckResult } from '../src/core/types';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
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

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const rows = Number(args.find((a) => !a.startsWith('--')) ?? 1_000_000);
  const replicas = Number(args.find((a) => a.startsWith('--replicas='))?.split('=')[1] ?? 3);
  const rangeRows = Number(args.find((a) => a.startsWith('--range-rows='))?.split('=')[1] ?? 50_000);
  const dir = mkdtempSync(join(tmpdir(), 'bench-ranges-'));
  const pg = await startEmbeddedPostgres();
  const children: ChildProcess[] = [];
  try {
    let t = Date.now();
    const sb = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl, cloud: false });
    console.log(`sandbox of ${n(rows)} rows built in ${((Date.now() - t) / 1000).toFixed(1)} s (load average ${load()})`);
    const admin = new Client({ connectionString: pg.adminUrl });
    await admin.connect();
    await admin.query('CREATE DATABASE bench_ranges');
    await admin.end();
    const u = new URL(pg.adminUrl);
    u.pathname = '/bench_ranges';
    const qurl = u.toString();

    if (args.includes('--single')) {
      const single = writeConfig(sb, mkdtempSync(join(dir, 'single-')), rangeRows, () => undefined);
      t = Date.now();
      const r = (await runAudit(loadConfig(single, { registry }), registry, { only: ['receipt-chain'] })).results[0];
      const s = (Date.now() - t) / 1000;
      console.log(`one process, no queue: ${r.status}, ${n(rows / s)} rows/s (${s.toFixed(1)} s; load average ${load()})`);
    }

    const shared = writeConfig(sb, mkdtempSync(join(dir, 'shared-')), rangeRows, (raw) => {
      raw.state = { postgres: { url: qurl, schema: 'aegis_state' } };
      raw.queue = { url: qurl, schema: 'aegis_fleet', concurrency: 2, replica: '${AEGIS_AUDIT_REPLICA}', publish_interval: '1s', maintenance_interval: '5s' };
    });
    console.log(`${replicas} replicas, ranges of ${n(rangeRows)} rows (load average ${load()})`);
    for (let i = 1; i <= replicas; i++) {
      const child = spawn(process.execPath, [CLI, 'daemon', '--config', shared, '--listen', '127.0.0.1:0'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, AEGIS_AUDIT_REPLICA: `r${i}`, AEGIS_AUDIT_LOG_LEVEL: 'warn' },
      });
      children.push(child);
    }
    let result: CheckResult | undefined;
    while (!result) {
      await new Promise((r) => setTimeout(r, 1000));
      result = (await sql<{ result: CheckResult }>(qurl, `SELECT result FROM aegis_fleet.fleet_latest WHERE check_id = 'receipt-chain'`).catch(() => []))[0]?.result;
    }
    const run = (await sql<{ started_at: Date; finished_at: Date }>(qurl, `SELECT started_at, finished_at FROM aegis_fleet.fleet_runs WHERE check_id = 'receipt-chain' AND finished_at IS NOT NULL ORDER BY started_at LIMIT 1`))[0];
    const parts = await sql<{ replica: string; rows: string; seconds: number; ranges: string }>(
      qurl,
      `SELECT replica, sum((result->>'rows')::bigint) AS rows, sum(extract(epoch FROM finished_at - started_at))::float AS seconds, count(*) AS ranges
         FROM aegis_fleet.fleet_parts GROUP BY replica ORDER BY replica`,
    );
    const wall = (new Date(run.finished_at).getTime() - new Date(run.started_at).getTime()) / 1000;
    for (const p of parts) console.log(`  ${p.replica}: ${p.ranges} ranges, ${n(Number(p.rows))} rows in ${p.seconds.toFixed(1)} s verifying: ${n(Number(p.rows) / p.seconds)} rows/s`);
    const verified = result.measurements?.find((m) => m.name === 'receipt_chain_verified_rows')?.value ?? NaN;
    console.log(`total: ${result.status}, ${n(verified)} rows verified in ${wall.toFixed(1)} s from the check's start to its result: ${n(verified / wall)} rows/s (load average ${load()})`);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
