/**
 * A fleet of sandbox deployments audited from one config, as figures: how long N members take
 * to build on one shared Postgres, one `run` over all of them (and its checks per second), the
 * daemon's first cycle over all of them, and the size and render time of its /metrics.
 *
 *   npm run build && node dist/bench/fleet.js [deployments=20] [concurrency=4] [rows=200]
 *
 * Members have no cloud side (their cloud checks are skipped); the first one violates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry as builtins } from '../checks';
import { auditFleetAndWrite } from '../src/app/fleet';
import { loadFleetFile } from '../src/config/fleet';
import { silentLogger } from '../src/core/logger';
import { startDaemon } from '../src/daemon';
import { buildSandboxFleet } from '../src/sandbox/fleet';

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20);
  const concurrency = Number(process.argv[3] ?? 4);
  const rows = Number(process.argv[4] ?? 200);
  const dir = mkdtempSync(join(tmpdir(), 'bench-fleet-'));
  let t = Date.now();
  const fleet = await buildSandboxFleet({
    dir,
    rows,
    fleet: { concurrency },
    deployments: Array.from({ length: n }, (_, i) => ({ deployment: `d${String(i).padStart(3, '0')}`, violations: i === 0 ? ['broken-link'] : 'none' })),
  });
  console.log(`build: ${n} sandbox deployments (${rows} rows each) on one Postgres in ${s(Date.now() - t)}`);
  try {
    const loaded = await loadFleetFile(fleet.configPath, { registry: builtins });
    t = Date.now();
    const run = await auditFleetAndWrite(loaded, { out: join(dir, 'out'), logger: silentLogger() });
    const checks = run.runs.reduce((k, r) => k + (r.report?.results.filter((x) => x.status !== 'skipped').length ?? 0), 0);
    const runMs = Date.now() - t;
    console.log(`run: ${n} deployments, ${checks} checks evaluated (fleet.concurrency ${concurrency}) in ${s(runMs)}: ${(checks / (runMs / 1000)).toFixed(1)} checks/s; rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);

    t = Date.now();
    const d = await startDaemon({ fleet: loaded, registry: loaded.registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
    await d.ready;
    const cycleMs = Date.now() - t;
    const m0 = Date.now();
    const { body } = await d.metrics.render();
    const series = body.split('\n').filter((l) => l.startsWith('aegis_compliance_')).length;
    console.log(`daemon: first cycle over ${n} deployments in ${s(cycleMs)}; /metrics ${series} aegis_compliance_* series, ${(body.length / 1024).toFixed(0)} KiB, rendered in ${Date.now() - m0} ms; rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
    await d.close();
  } finally {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
