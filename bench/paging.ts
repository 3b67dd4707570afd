/**
 * Page latency from the daemon's start, per check class, on the real paging path with the
 * shipped files as they are: a sandbox seeded with a tampered receipt chain, a secret in its
 * logs, a literal secret in SSM's history (integrity and leak checks: page on the first failing
 * run) and an orphaned historical key and a drifting internal secret (5-minute checks that page
 * when the next run fails too); the daemon on its default schedules; Prometheus with the
 * shipped rules at a cluster's intervals; Alertmanager with alerts/alertmanager.example.yml's
 * grouping and timing (receivers pointed at a local webhook).
 *
 *   npm run build && node dist/bench/paging.js [minutes=10] [scrape=30s] [evaluation=30s]
 *
 * (30 s scrape: docs/deploy/kubernetes/servicemonitor.yaml; 30 s evaluation: the Prometheus
 * operator's default.) Starts its own embedded Postgres. Runs until every failing check paged
 * or `minutes` passed; prints each check's page latency from the daemon's start and from its
 * first failing run, its class and `for`, and the load average.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { registry } from '../checks';
import { loadConfig } from '../src/config/load';
import { silentLogger } from '../src/core/logger';
import { startDaemon, type Daemon } from '../src/daemon';
import { buildSandbox, type Sandbox } from '../src/sandbox/build';
import { alertCheck, checkTiming } from '../src/outputs/alert-rules';
import { firingByCheck, freePort, startPagingStack, type PagingStack } from './lib/paging-stack';

// The pinned AWS SDK warns on every start that future releases need Node 22 (see bin/aegis-audit.js).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const VIOLATIONS = ['tampered-payload', 'log-known-secret', 'ssm-literal-secret', 'historical-key-orphaned', 'internal-secret-differs'];
const ROOT = join(__dirname, '..', '..');

async function main(): Promise<void> {
  const minutes = Number(process.argv[2] ?? 10);
  const scrape = process.argv[3] ?? '30s';
  const evaluation = process.argv[4] ?? '30s';
  const rulesFile = join(ROOT, 'alerts', 'aegis-compliance.rules.yml');
  const forOf = new Map<string, string>();
  for (const g of (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: { alert: string; for: string; labels: { check?: string } }[] }[] }).groups) {
    for (const r of g.rules) if (r.alert.endsWith('Failing') && r.labels.check) forOf.set(r.labels.check, r.for);
  }
  const dir = mkdtempSync(join(tmpdir(), 'aegis-bench-paging-'));
  let sandbox: Sandbox | undefined;
  let stack: PagingStack | undefined;
  let daemon: Daemon | undefined;
  const load0 = loadavg();
  try {
    process.stdout.write(`building the sandbox (${VIOLATIONS.join(', ')})...\n`);
    sandbox = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 7, rows: 2000, violations: VIOLATIONS, deployment: 'bench-paging' });
    const failing = [...new Set(sandbox.manifest.violations.map((v) => v.check))].sort();
    const port = await freePort();
    stack = await startPagingStack({
      dir: join(dir, 'stack'),
      targets: [`127.0.0.1:${port}`],
      rulesFile,
      alertmanagerConfig: join(ROOT, 'alerts', 'alertmanager.example.yml'),
      scrapeInterval: scrape,
      evaluationInterval: evaluation,
    });
    const firstFail = new Map<string, number>();
    const t0 = Date.now();
    daemon = await startDaemon({
      loaded: loadConfig(sandbox.configPath, { registry }),
      registry,
      listen: `127.0.0.1:${port}`,
      logger: silentLogger(),
      onReport: (report) => {
        for (const r of report.results) if (r.status === 'fail' && !firstFail.has(r.check)) firstFail.set(r.check, Date.parse(r.startedAt) + r.durationMs);
      },
    });
    process.stdout.write(`daemon started; waiting up to ${minutes} min for pages of ${failing.join(', ')} (scrape ${scrape}, evaluation ${evaluation})\n`);
    const deadline = t0 + minutes * 60_000;
    const s = stack;
    while (Date.now() < deadline && !failing.every((id) => firingByCheck(s.notifications).has(id))) await new Promise((r) => setTimeout(r, 500));

    const byCheck = firingByCheck(stack.notifications);
    const rows = failing.map((id) => {
      const meta = registry.get(id)!.meta;
      const pages = byCheck.get(id) ?? [];
      const at = pages[0]?.at;
      const cls = meta.pagesOnFirstFailure ? 'integrity/leak' : 'next run';
      const interval = checkTiming(alertCheck(meta)).intervalSeconds / 60;
      const fromStart = at === undefined ? `not within ${minutes} min` : `${((at - t0) / 1000).toFixed(1)} s`;
      const fromRun = at === undefined || !firstFail.has(id) ? '-' : `${((at - firstFail.get(id)!) / 1000).toFixed(1)} s`;
      return `${id.padEnd(24)} ${cls.padEnd(15)} every ${String(interval).padStart(2)} min  for ${(forOf.get(id) ?? '?').padEnd(4)}  page after start ${fromStart.padEnd(18)} after first failing run ${fromRun.padEnd(8)} pages ${pages.length}  receiver ${pages[0]?.body.receiver ?? '-'}`;
    });
    const load1 = loadavg();
    process.stdout.write(`${rows.join('\n')}\n`);
    process.stdout.write(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')} (${cpus().length} cores)\n`);
  } finally {
    await daemon?.close();
    await stack?.stop();
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
