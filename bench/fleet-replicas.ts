/**
 * A fleet of sandbox deployments audited by daemon replicas sharing the queue, as figures: how
 * many check runs a second the replicas complete when there is always work (every check of
 * every deployment scheduled every `period` seconds, more than the replicas can run; a check
 * still queued or running skips the tick, so the queue never holds more than one run of a
 * check), per replica, with their mean duration.
 *
 *   npm run build && node dist/bench/fleet-replicas.js [deployments=20] [replicas=3] [concurrency=8] [seconds=60] [checks=cheap|all] [period=5]
 *
 * `cheap`: internal-secret-drift, historical-keys, signing-key-fingerprint, pem-files-at-rest
 * (what test/fleet/many.test.ts runs); `all`: every check a member without a cloud side runs.
 * The first 20 s are a warm-up (first cycle, connections); the figures are of the rest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { parse, stringify } from 'yaml';
import { builtinChecks } from '../checks';
import { buildSandboxFleet } from '../src/sandbox/fleet';

const CHEAP = ['internal-secret-drift', 'historical-keys', 'signing-key-fingerprint', 'pem-files-at-rest'];
const WARMUP_S = 20;

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20);
  const replicas = Number(process.argv[3] ?? 3);
  const concurrency = Number(process.argv[4] ?? 8);
  const seconds = Number(process.argv[5] ?? 60);
  const which = process.argv[6] ?? 'cheap';
  const period = Number(process.argv[7] ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'bench-fleet-replicas-'));
  const fleet = await buildSandboxFleet({ dir, rows: 40, deployments: Array.from({ length: n }, (_, i) => ({ deployment: `d${String(i).padStart(3, '0')}` })) });
  const children: ChildProcess[] = [];
  try {
    const config = parse(readFileSync(fleet.configPath, 'utf8')) as { defaults: Record<string, unknown> };
    const checks: Record<string, unknown> = {};
    for (const c of builtinChecks) checks[c.meta.id] = which === 'all' || CHEAP.includes(c.meta.id) ? { schedule: period === 1 ? '* * * * * *' : `*/${period} * * * * *` } : { enabled: false };
    writeFileSync(
      fleet.configPath,
      stringify({
        fleet: { concurrency, max_per_deployment: Math.max(1, Math.ceil(concurrency / 2)) },
        queue: { url: fleet.adminUrl, schema: 'aegis_bench', concurrency, replica: '${AEGIS_AUDIT_REPLICA}', publish_interval: '5s' },
        ...config,
        defaults: { ...config.defaults, checks },
      }),
    );
    const cli = resolve(__dirname, '..', '..', 'bin', 'aegis-audit.js');
    for (let i = 0; i < replicas; i++) {
      children.push(
        spawn(process.execPath, [cli, 'daemon', '--config', fleet.configPath, '--listen', '127.0.0.1:0'], {
          stdio: ['ignore', 'ignore', 'ignore'],
          env: { ...process.env, AEGIS_AUDIT_REPLICA: `r${i + 1}`, AEGIS_AUDIT_LOG_LEVEL: 'warn' },
        }),
      );
    }
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, (WARMUP_S + seconds) * 1000));
    const from = new Date(t0 + WARMUP_S * 1000);
    const to = new Date(Date.now());
    const c = new Client({ connectionString: fleet.adminUrl });
    await c.connect();
    const rows = (
      await c.query<{ replica: string; n: string; mean_ms: number; checks: string }>(
        `SELECT replica, count(*) AS n, avg(extract(epoch FROM finished_at - started_at) * 1000)::float AS mean_ms, count(DISTINCT (deployment, check_id)) AS checks
           FROM aegis_bench.fleet_runs WHERE finished_at >= $1 AND finished_at < $2 GROUP BY replica ORDER BY replica`,
        [from, to],
      )
    ).rows;
    const distinct = Number((await c.query<{ n: string }>(`SELECT count(DISTINCT (deployment, check_id)) AS n FROM aegis_bench.fleet_runs WHERE finished_at >= $1 AND finished_at < $2`, [from, to])).rows[0].n);
    await c.end();
    const span = (to.getTime() - from.getTime()) / 1000;
    const total = rows.reduce((k, r) => k + Number(r.n), 0);
    console.log(`fleet on replicas: ${n} deployments × ${which} checks (${distinct} distinct checks ran), ${replicas} replicas × ${concurrency} slots, every check due every ${period} s`);
    console.log(`  ${total} runs completed in ${span.toFixed(0)} s: ${(total / span).toFixed(1)} runs/s`);
    for (const r of rows) console.log(`  ${r.replica}: ${r.n} runs (${(Number(r.n) / span).toFixed(1)}/s), mean ${r.mean_ms.toFixed(0)} ms a run`);
  } finally {
    for (const ch of children) ch.kill('SIGTERM');
    await Promise.all(children.map((ch) => new Promise((r) => (ch.exitCode !== null ? r(undefined) : ch.once('exit', r)))));
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
