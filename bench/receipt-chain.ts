/**
 * receipt-chain at scale: a sandbox with N audit rows (default 100 000) on a real Postgres,
 * one full verification pass (rows verified per second), then M more rows (default 1 000)
 * and the incremental second run. Prints the figures; asserts nothing.
 *
 *   npm run build && node dist/bench/receipt-chain.js [rows] [appendRows]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../checks';
import { loadConfig } from '../src/config/load';
import { runAudit } from '../src/app/audit';
import { buildSandbox } from '../src/sandbox/build';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';
import type { CheckResult } from '../src/core/types';

function verified(r: CheckResult): number {
  return r.measurements?.find((m) => m.name === 'receipt_rows_verified')?.value ?? NaN;
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 100_000);
  const more = Number(process.argv[3] ?? 1_000);
  const dir = mkdtempSync(join(tmpdir(), 'bench-chain-'));
  const pg = await startEmbeddedPostgres();
  try {
    let t = Date.now();
    const sandbox = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl });
    console.log(`sandbox with ${rows} rows built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    try {
      const loaded = loadConfig(sandbox.configPath, { registry });
      const audit = async () => {
        const start = process.hrtime.bigint();
        const report = await runAudit(loaded, registry, { only: ['receipt-chain'] });
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        const r = report.results[0];
        if (r.status !== 'pass') throw new Error(`receipt-chain ${r.status}: ${r.error ?? r.findings.map((f) => f.message).join('; ')}`);
        return { ms, verified: verified(r), checkMs: r.durationMs };
      };
      const rssBefore = process.memoryUsage().rss;
      const full = await audit();
      const rssAfter = process.memoryUsage().rss;
      console.log(
        `full pass: ${full.verified} rows verified in ${(full.checkMs / 1000).toFixed(2)} s = ${Math.round(full.verified / (full.checkMs / 1000))} rows/s ` +
          `(RSS ${Math.round(rssBefore / 2 ** 20)} → ${Math.round(rssAfter / 2 ** 20)} MiB)`,
      );
      t = Date.now();
      await sandbox.append(more);
      console.log(`appended ${more} rows in ${Date.now() - t} ms`);
      const second = await audit();
      console.log(`second run: ${second.verified} new rows verified in ${second.checkMs} ms (whole run ${Math.round(second.ms)} ms)`);
      const idle = await audit();
      console.log(`third run, nothing new: ${idle.verified} rows in ${idle.checkMs} ms`);
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
