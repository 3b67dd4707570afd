/**
 * Paging from the daemon's start, end to end with the real binaries and the shipped files as
 * they are: a sandbox deployment seeded with a tampered receipt chain, a secret in its logs, a
 * literal secret in SSM's command history, an orphaned historical key and a drifting internal
 * secret; the daemon (default schedules) audits it; Prometheus scrapes it every second and
 * evaluates alerts/aegis-compliance.rules.yml unchanged; Alertmanager routes with
 * alerts/alertmanager.example.yml's own grouping and timing (only the receivers point at this
 * test's webhook).
 *
 * Integrity and leak checks page on their first failing run: each pages within two of its
 * check intervals of the daemon's start (in practice: its first run, one scrape and evaluation,
 * and group_wait), exactly once, labelled with the deployment, with a runbook link that
 * resolves in the repository. Checks that wait for their next run do not page in that time.
 * The figures are printed; bench/paging.ts also waits for the next-run class.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/core/logger';
import { startDaemon, type Daemon } from '../../src/daemon';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import { alertCheck, checkTiming } from '../../src/outputs/alert-rules';
import { firingByCheck, freePort, startPagingStack, waitFor, type PagingStack } from '../../bench/lib/paging-stack';
import { adminUrl } from '../helpers/pg';

const ROOT = join(__dirname, '..', '..');
const RULES = join(ROOT, 'alerts', 'aegis-compliance.rules.yml');
const AM_EXAMPLE = join(ROOT, 'alerts', 'alertmanager.example.yml');
const DEPLOYMENT = 'prod-eu-1';
const VIOLATIONS = ['tampered-payload', 'log-known-secret', 'ssm-literal-secret', 'historical-key-orphaned', 'internal-secret-differs'];

let dir: string;
let sandbox: Sandbox | undefined;
let daemon: Daemon | undefined;
let stack: PagingStack | undefined;

afterAll(async () => {
  await daemon?.close();
  await stack?.stop();
  await sandbox?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

test(
  'a seeded tampered chain and leaks page from the first run, once per check, labelled with the deployment and a working runbook',
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'aegis-e2e-paging-'));
    sandbox = await buildSandbox({ dir: join(dir, 'sandbox'), seed: 7, rows: 400, violations: VIOLATIONS, adminUrl: adminUrl(), deployment: DEPLOYMENT });
    const failing = new Set(sandbox.manifest.violations.map((v) => v.check));
    expect(failing).toContain('receipt-chain');
    const meta = (id: string) => registry.get(id)!.meta;
    const firstRun = [...failing].filter((id) => meta(id).pagesOnFirstFailure).sort();
    const nextRun = [...failing].filter((id) => !meta(id).pagesOnFirstFailure).sort();
    expect(firstRun).toEqual(expect.arrayContaining(['receipt-chain', 'secrets-in-logs', 'ssm-persisted-secrets']));
    expect(nextRun).toEqual(expect.arrayContaining(['historical-keys', 'internal-secret-drift']));

    // Prometheus and Alertmanager are up before the daemon, as in a cluster.
    const port = await freePort();
    stack = await startPagingStack({ dir: join(dir, 'stack'), targets: [`127.0.0.1:${port}`], rulesFile: RULES, alertmanagerConfig: AM_EXAMPLE, jobName: 'kubernetes-pods' });

    const loaded = loadConfig(sandbox.configPath, { registry });
    expect(loaded.config.checks).toEqual({}); // the shipped rules' timing assumes the default schedules
    const finished = new Map<string, number>();
    const t0 = Date.now();
    daemon = await startDaemon({
      loaded,
      registry,
      listen: `127.0.0.1:${port}`,
      logger: silentLogger(),
      onReport: (report) => {
        for (const r of report.results) if (r.status === 'fail' && !finished.has(r.check)) finished.set(r.check, Date.now());
      },
    });

    // every integrity and leak check pages, each well within two of its intervals
    const s = stack;
    await waitFor(() => firstRun.every((id) => firingByCheck(s.notifications).has(id)), `pages for ${firstRun.join(', ')}`, 300_000, 100);
    const pagedAt = new Map(firstRun.map((id) => [id, firingByCheck(s.notifications).get(id)![0].at]));
    for (const id of firstRun) {
      const interval = checkTiming(alertCheck(meta(id))).intervalSeconds;
      expect({ id, withinTwoIntervals: pagedAt.get(id)! - t0 <= 2 * interval * 1000 }).toEqual({ id, withinTwoIntervals: true });
    }

    // one page per check: nothing more arrives for them (the example's group_interval is 5 min)
    // and the checks that wait for their next run have not paged
    await new Promise((r) => setTimeout(r, 15_000));
    const byCheck = firingByCheck(s.notifications);
    for (const id of firstRun) expect({ id, pages: byCheck.get(id)?.length }).toEqual({ id, pages: 1 });
    for (const id of nextRun) expect({ id, pages: byCheck.get(id)?.length ?? 0 }).toEqual({ id, pages: 0 });
    expect([...byCheck.keys()].sort()).toEqual(firstRun);

    for (const id of firstRun) {
      const n = byCheck.get(id)![0];
      expect(n.body.version).toBe('4');
      expect(n.body.groupLabels).toEqual({ deployment: DEPLOYMENT, check: id });
      expect(n.body.receiver).toBe(meta(id).severity === 'critical' ? 'compliance-pager' : 'compliance-tickets');
      expect(n.body.alerts.length).toBe(1);
      const [alert] = n.body.alerts;
      expect(alert.labels).toMatchObject({ alertname: expect.stringMatching(/^AegisCompliance.*Failing$/), check: id, deployment: DEPLOYMENT });
      // one alert per deployment and check, whichever target exports it: no scrape target's labels
      expect({ instance: alert.labels.instance, job: alert.labels.job }).toEqual({ instance: undefined, job: undefined });
      expect(alert.annotations.description).toContain(`in deployment ${DEPLOYMENT}`);
      // the runbook link resolves in the repository (and the package) to this check's runbook
      const runbook = alert.annotations.runbook_url;
      expect(runbook).toBe(`docs/runbooks/${id}.md`);
      expect(existsSync(join(ROOT, runbook))).toBe(true);
      expect(readFileSync(join(ROOT, runbook), 'utf8')).toContain(id);
    }

    const lines = firstRun.map((id) => {
      const page = pagedAt.get(id)! - t0;
      const run = (finished.get(id) ?? NaN) - t0;
      return `  ${id.padEnd(24)} page ${(page / 1000).toFixed(1)} s after daemon start (first failing run done at ${(run / 1000).toFixed(1)} s; interval ${checkTiming(alertCheck(meta(id))).intervalSeconds / 60} min)`;
    });
    // eslint-disable-next-line no-console
    console.log(`paging from daemon start (scrape/eval 1s, shipped rules, example Alertmanager routing):\n${lines.join('\n')}\n  not paged (wait for the next run): ${nextRun.join(', ')}`);
  },
  420_000,
);
