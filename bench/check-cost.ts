/**
 * What each check of one sandbox fleet member costs, run alone, first run and later runs:
 * CPU (process.cpuUsage: every thread of this process) and wall.
 *
 *   npm run build && node dist/bench/check-cost.js [rows=40] [runs=3] [--cloud]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../checks';
import { loadFleetFile } from '../src/config/fleet';
import { planChecks, runAudit } from '../src/app/audit';
import { buildSandboxFleet } from '../src/sandbox/fleet';

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 40);
  const runs = Number(process.argv[3] ?? 3);
  const cloud = process.argv.includes('--cloud');
  const dir = mkdtempSync(join(tmpdir(), 'bench-check-cost-'));
  const fleet = await buildSandboxFleet({ dir, rows, cloud, deployments: [{ deployment: 'd00' }] });
  try {
    const loaded = await loadFleetFile(fleet.configPath, { registry });
    const member = loaded.deployments[0];
    const planned = planChecks(member, registry).map((p) => p.check.meta.id);
    console.log(`rows ${rows}, cloud ${cloud}, load ${loadavg()[0].toFixed(1)}; enabled: ${planned.join(', ')}`);
    let total = Array(runs).fill(0) as number[];
    for (const id of planned) {
      const line: string[] = [];
      for (let i = 0; i < runs; i++) {
        const c0 = process.cpuUsage();
        const t = Date.now();
        const r = (await runAudit(member, registry, { only: [id] })).results[0];
        const c = process.cpuUsage(c0);
        const cpu = (c.user + c.system) / 1000;
        total[i] += cpu;
        line.push(`${cpu.toFixed(0)} ms CPU/${Date.now() - t} ms wall ${r.status}`);
      }
      console.log(`${id}: ${line.join(' | ')}`);
    }
    console.log(`total CPU per run: ${total.map((x) => x.toFixed(0)).join(', ')} ms; load ${loadavg()[0].toFixed(1)}`);
  } finally {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
