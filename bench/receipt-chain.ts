/**
 * receipt-chain at scale, on a real Postgres with a sandbox chain of N rows (default
 * 1 000 000), with the default config (default timeout, statement_timeout, batch size,
 * schedule and rehash_period). Prints figures; asserts nothing.
 *
 *  1. the first pass, as a user runs it: `aegis-audit run --config audit.yaml --checks receipt-chain`
 *     (a child process; wall time, and whether it finished in one run);
 *  2. M more rows (default 1 000) and the incremental run;
 *  3. rolling re-verification: cycles 15 minutes apart (the default `*\/15` schedule) with the
 *     default rehash_period (24 h): rows re-verified per cycle and the check's time;
 *  4. a tampered old row: the row the rolling cursor has just passed (the worst place) is
 *     altered, and cycles 15 minutes apart run until it is found: how long that takes on the
 *     deployment's clock (simulated, so the bench does not take a day), in how many cycles.
 *
 *   npm run build && node dist/bench/receipt-chain.js [rows] [appendRows] [--no-tamper]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { registry } from '../checks';
import { loadConfig } from '../src/config/load';
import { runAudit } from '../src/app/audit';
import { buildSandbox } from '../src/sandbox/build';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';
import type { CheckResult, Report } from '../src/core/types';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
const CYCLE_MS = 15 * 60_000;

const fig = (r: CheckResult, name: string) => r.measurements?.find((m) => m.name === name)?.value ?? NaN;
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const rows = Number(args[0] ?? 1_000_000);
  const more = Number(args[1] ?? 1_000);
  const tamper = !process.argv.includes('--no-tamper');
  const dir = mkdtempSync(join(tmpdir(), 'bench-chain-'));
  const pg = await startEmbeddedPostgres();
  try {
    let t = Date.now();
    const sandbox = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl, cloud: false });
    console.log(`sandbox with ${rows} rows built in ${((Date.now() - t) / 1000).toFixed(1)} s (load average ${load()})`);
    try {
      // 1. The first pass, exactly as a user runs it.
      const out = join(dir, 'out');
      const command = `node bin/aegis-audit.js run --config ${sandbox.configPath} --checks receipt-chain --out ${out}`;
      t = Date.now();
      const child = await promisify(execFile)('node', [CLI, 'run', '--config', sandbox.configPath, '--checks', 'receipt-chain', '--out', out], { env: { ...process.env } }).then(
        () => 0,
        (e: { code?: number }) => e.code ?? -1,
      );
      const wall = (Date.now() - t) / 1000;
      const first = (JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report).results[0];
      console.log(`\n1. first pass: \`${command}\``);
      console.log(
        `   exit ${child}, ${first.status}${first.error ? ` (${first.error})` : ''}: ${fig(first, 'receipt_rows_verified')} rows verified in ${(first.durationMs / 1000).toFixed(1)} s ` +
          `= ${Math.round(fig(first, 'receipt_rows_verified') / (first.durationMs / 1000))} rows/s; whole command ${wall.toFixed(1)} s wall (load average ${load()})`,
      );

      const loaded = loadConfig(sandbox.configPath, { registry });
      let clock = Date.now();
      const cycle = async (advanceMs: number) => {
        clock += advanceMs;
        const start = process.hrtime.bigint();
        const report = await runAudit(loaded, registry, { only: ['receipt-chain'], now: () => new Date(clock) });
        return { r: report.results[0], ms: Number(process.hrtime.bigint() - start) / 1e6 };
      };

      // 2. New rows only.
      t = Date.now();
      await sandbox.append(more);
      const inc = await cycle(0);
      console.log(`\n2. +${more} rows appended in ${Date.now() - t} ms; incremental run: ${fig(inc.r, 'receipt_rows_verified')} new rows verified, check ${inc.r.durationMs} ms (${inc.r.status})`);

      // 3. Rolling re-verification on the default schedule.
      const costs: { rows: number; ms: number }[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await cycle(CYCLE_MS);
        costs.push({ rows: fig(c.r, 'receipt_rows_reverified'), ms: c.r.durationMs });
      }
      console.log(
        `\n3. rolling re-verification, cycles 15 min apart, rehash_period 24h: ${costs.map((c) => `${c.rows} rows in ${c.ms} ms`).join('; ')} ` +
          `(median ${median(costs.map((c) => c.ms))} ms per cycle; load average ${load()})`,
      );

      // 4. A tampered old row, in the worst place: just behind the rolling cursor.
      if (tamper) {
        const stateDir = loaded.config.state.dir as string;
        const cpFile = readdirSync(stateDir).find((f) => readFileSync(join(stateDir, f), 'utf8').includes('"rehash"')) as string;
        const cursor = (JSON.parse(readFileSync(join(stateDir, cpFile), 'utf8')) as { rehash: { cursor: number } }).rehash.cursor;
        const c = new Client({ connectionString: sandbox.postgresUrl });
        await c.connect();
        await c.query(`UPDATE audit_log SET payload = jsonb_set(payload, '{tampered}', 'true') WHERE id = $1`, [cursor]);
        await c.end();
        let cycles = 0;
        let computeMs = 0;
        let found = false;
        while (!found && cycles < 200) {
          const r = await cycle(CYCLE_MS);
          cycles++;
          computeMs += r.r.durationMs;
          found = r.r.findings.some((f) => f.resource === `row=${cursor}` && f.severity !== 'info');
        }
        const hours = (cycles * CYCLE_MS) / 3_600_000;
        console.log(
          `\n4. row ${cursor} altered just behind the rolling cursor: ${found ? `found after ${cycles} cycles = ${hours.toFixed(2)} h on the deployment's clock` : `NOT found in ${cycles} cycles`} ` +
            `(rehash_period 24h, schedule */15; ${(computeMs / 1000).toFixed(1)} s of checking in all)`,
        );
      }
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
