/**
 * Paging from replicas, end to end with the real binaries, as an operator runs them: three
 * `aegis-audit daemon` processes sharing a fleet of three sandbox deployments through the queue;
 * one Prometheus scrape job with the three replicas as its targets, evaluating the shipped
 * alerts/aegis-compliance.rules.yml unchanged; Alertmanager routing with
 * alerts/alertmanager.example.yml's own grouping and timing (only the receivers point at this
 * test's webhook).
 *
 * A failing check of one deployment (a PEM key left on disk: pem-files-at-rest, `for: 0s`) is
 * one firing alert and one notification, not three: only the leader exports results, and the
 * rules aggregate the exporting target away (no `instance` or `job` on the alert). Then the
 * leader is SIGKILLed: its series go stale as its target goes down, and the new leader — a
 * standby tries the lock every `queue.publish_interval` — exports the shared result within
 * seconds. Asserted: through that gap and after it, Prometheus has the one alert firing with
 * the same activeAt (keep_firing_for bridges the gap: never resolved, never a second alert),
 * and the receiver gets nothing after the page — neither resolved nor firing — until past the
 * group's next flush. The example's routing and grouping are used as they are, with every
 * group_interval cut from 5 min to GROUP_INTERVAL (a flush with nothing changed sends nothing
 * whatever its interval; with replica-labelled alerts the flush after the kill did send).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { builtinChecks } from '../../checks';
import { buildSandboxFleet, type SandboxFleet } from '../../src/sandbox/fleet';
import { freePort, httpGet, startPagingStack, type PagingStack } from '../../bench/lib/paging-stack';
import { expectFreshBuild } from '../helpers/build';
import { adminUrl, createTestDatabase } from '../helpers/pg';
import { sample } from '../daemon/helpers';

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'aegis-audit.js');
const RULES = join(ROOT, 'alerts', 'aegis-compliance.rules.yml');
const AM_EXAMPLE = join(ROOT, 'alerts', 'alertmanager.example.yml');
const CHECK = 'pem-files-at-rest';
const ALERT = 'AegisCompliancePemFilesAtRestFailing';
const FAILING = 'pb';
const DEPLOYMENTS = ['pa', FAILING, 'pc'];
const REPLICAS = ['r1', 'r2', 'r3'];
const PERIOD_S = 5;
/** The test's group_interval: the example's 5 min would keep this file running 6 minutes. */
const GROUP_INTERVAL = '1m';

let root: string;
let fleet: SandboxFleet;
let stack: PagingStack | undefined;
let db: { url: string; drop: () => Promise<void> };
const children = new Map<string, ChildProcess>();
const logs = new Map<string, string>();
const ports = new Map<string, number>();

function diagnostics(): string {
  return [...children]
    .map(([name, c]) => `--- replica ${name}: ${c.exitCode === null && c.signalCode === null ? 'running' : `exited (code ${c.exitCode}, signal ${c.signalCode})`}; last output:\n${(logs.get(name) ?? '').slice(-3000)}`)
    .join('\n');
}

async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) {
      const notes = stack ? `\nnotifications: ${JSON.stringify(stack.notifications.map((n) => ({ at: n.at, status: n.body.status, group: n.body.groupLabels })))}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${notes}\n${diagnostics()}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const target = (r: string) => `127.0.0.1:${ports.get(r)}`;

/** Prometheus' alerts on the check now (pending or firing), as /api/v1/alerts lists them. */
async function alertsOnCheck(): Promise<{ labels: Record<string, string>; state: string; activeAt: string }[]> {
  const r = await httpGet(stack!.promAddress, '/api/v1/alerts');
  const body = JSON.parse(r.body) as { data?: { alerts?: { labels: Record<string, string>; state: string; activeAt: string }[] } };
  return (body.data?.alerts ?? []).filter((a) => a.labels.alertname === ALERT);
}

/** The replicas whose scraped series say the check fails in the failing deployment now (the alert's input, before keep_firing_for). */
async function exportingFailure(): Promise<string[]> {
  const q = `aegis_compliance_check_status{deployment="${FAILING}", check="${CHECK}", status="fail"} == 1`;
  const r = await httpGet(stack!.promAddress, `/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = JSON.parse(r.body) as { data?: { result?: { metric: Record<string, string> }[] } };
  return (body.data?.result ?? []).map((x) => x.metric.instance).sort();
}

/** A duration of Alertmanager's config (`30s`, `5m`, `1h`) in ms. */
function durationMs(d: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(d);
  if (!m) throw new Error(`unsupported duration ${d}`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

type AmRoute = { group_interval?: string; matchers?: string[]; routes?: AmRoute[] };

/** The example config with every route's group_interval set to GROUP_INTERVAL; the rest (grouping, matchers, group_wait) as it is. */
function amConfigForTest(path: string): string {
  const am = parse(readFileSync(AM_EXAMPLE, 'utf8')) as { route: AmRoute };
  const cut = (r: AmRoute) => {
    if (r.group_interval !== undefined) r.group_interval = GROUP_INTERVAL;
    r.routes?.forEach(cut);
  };
  cut(am.route);
  writeFileSync(path, stringify(am));
  return path;
}

/** group_interval of the route alerts of this page severity take in a config (a child's own, else the root's). */
function groupIntervalMs(config: string, severity: string): number {
  const am = parse(readFileSync(config, 'utf8')) as { route: { group_interval: string; routes?: { matchers?: string[]; group_interval?: string }[] } };
  const child = am.route.routes?.find((r) => r.matchers?.includes(`severity="${severity}"`));
  return durationMs(child?.group_interval ?? am.route.group_interval);
}

const ofGroup = () => stack!.notifications.filter((n) => n.body.groupLabels.check === CHECK && n.body.groupLabels.deployment === FAILING);

beforeAll(async () => {
  expectFreshBuild();
  db = await createTestDatabase('pagingreplicas');
  root = mkdtempSync(join(tmpdir(), 'aegis-paging-replicas-'));
  fleet = await buildSandboxFleet({
    dir: join(root, 'fleet'),
    adminUrl: adminUrl(),
    rows: 40,
    deployments: DEPLOYMENTS.map((deployment) => ({ deployment, violations: deployment === FAILING ? ['pem-file-left'] : 'none' })),
  });
  const config = parse(readFileSync(fleet.configPath, 'utf8')) as { defaults: Record<string, unknown> };
  const checks: Record<string, unknown> = Object.fromEntries(builtinChecks.map((c) => [c.meta.id, { enabled: false }]));
  for (const id of [CHECK, 'signing-key-fingerprint']) checks[id] = { schedule: `*/${PERIOD_S} * * * * *` };
  writeFileSync(
    fleet.configPath,
    stringify({
      queue: { url: db.url, schema: 'aegis_fleet', concurrency: 2, replica: '${AEGIS_AUDIT_REPLICA}', expire_grace: '1s', retry_delay: '1s', maintenance_interval: '1s', publish_interval: '1s' },
      ...config,
      defaults: { ...config.defaults, checks },
    }),
  );
  for (const r of REPLICAS) ports.set(r, await freePort());
}, 180_000);

afterAll(async () => {
  for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.stop();
  await fleet?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  await db?.drop();
}, 60_000);

test('one failing check of one deployment on three replicas is one alert and one page; killing the leader sends nothing more, past the next group_interval', async () => {
  // Prometheus and Alertmanager first, as in a cluster: one job, the three replicas its targets.
  const amConfig = amConfigForTest(join(root, 'alertmanager.yml'));
  stack = await startPagingStack({ dir: join(root, 'stack'), targets: REPLICAS.map(target), rulesFile: RULES, alertmanagerConfig: amConfig, jobName: 'aegis-audit' });
  for (const r of REPLICAS) {
    const child = spawn(process.execPath, [CLI, 'daemon', '--config', fleet.configPath, '--listen', target(r)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AEGIS_AUDIT_REPLICA: r, AEGIS_AUDIT_LOG_LEVEL: 'info' },
    });
    logs.set(r, '');
    const append = (c: Buffer) => logs.set(r, ((logs.get(r) ?? '') + c.toString()).slice(-262_144));
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    children.set(r, child);
  }
  await waitFor(async () => (await stack!.query('count(up{job="aegis-audit"} == 1)')) === 3, 'Prometheus to scrape the three replicas', 120_000, 500);

  // The page: one notification, one alert, whose labels name the deployment and check and no replica.
  const page = await waitFor(() => ofGroup().find((n) => n.body.status === 'firing'), `the page for ${CHECK} of ${FAILING}`, 180_000, 100);
  const scrape = async (r: string) => (await httpGet(target(r), '/metrics')).body;
  const leaders = (await Promise.all(REPLICAS.map(async (r) => ({ r, m: await scrape(r) })))).filter((x) => sample(x.m, `aegis_compliance_leader{deployment="${FAILING}"}`) === 1);
  expect(leaders.map((l) => l.r)).toHaveLength(1);
  const first = leaders[0].r;
  expect(page.body.alerts).toHaveLength(1);
  const labels = { alertname: ALERT, check: CHECK, check_severity: 'high', deployment: FAILING, severity: 'warning' };
  expect(page.body.alerts[0].labels).toEqual(labels);
  expect(await exportingFailure()).toEqual([target(first)]);
  const [alert] = await alertsOnCheck();
  expect(alert).toMatchObject({ labels, state: 'firing' });
  const groupInterval = groupIntervalMs(amConfig, labels.severity);
  expect(groupInterval).toBe(durationMs(GROUP_INTERVAL));

  // Kill the leader; every 250 ms until the new leader exports the result, then every second
  // until past the group's next flush: Prometheus has the one alert firing all along (the same
  // activeAt: never resolved), whoever exports it.
  await new Promise((r) => setTimeout(r, 5_000));
  children.get(first)?.kill('SIGKILL');
  const killedAt = Date.now();
  const survivors = REPLICAS.filter((r) => r !== first);
  const seen: { at: number; exporting: string[]; live: number }[] = [];
  const problems: string[] = [];
  const failing = `aegis_compliance_check_status{deployment="${FAILING}",check="${CHECK}",check_severity="high",status="fail"}`;
  const watch = async () => {
    const [now, exporting, live] = await Promise.all([
      alertsOnCheck(),
      exportingFailure(),
      // The survivors themselves: how many export the result right now (Prometheus's view can
      // hold the dead leader's last sample until its next failed scrape marks it stale).
      Promise.all(survivors.map(async (r) => sample(await scrape(r).catch(() => ''), failing) === 1)).then((xs) => xs.filter(Boolean).length),
    ]);
    seen.push({ at: Date.now(), exporting, live });
    if (now.length !== 1 || now[0].state !== 'firing' || now[0].activeAt !== alert.activeAt) problems.push(`${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill: ${JSON.stringify(now)}`);
    return exporting;
  };
  const moved = await waitFor(
    async () => {
      const exporting = await watch();
      return exporting.length > 0 && !exporting.includes(target(first)) && exporting;
    },
    'a surviving replica to export the failing result',
    60_000,
    250,
  );
  const movedAt = Date.now();
  expect(moved).toHaveLength(1);
  expect(survivors.map(target)).toContain(moved[0]);
  // Never two live replicas exporting at once; the time Prometheus had none is the gap
  // keep_firing_for bridges (a moment with the dead leader's sample and the new one's is one alert too).
  expect(Math.max(...seen.map((s) => s.live))).toBeLessThanOrEqual(1);
  const gap = seen.filter((s) => s.exporting.length === 0);
  const gapMs = gap.length > 0 ? gap[gap.length - 1].at - gap[0].at + 250 : 0;

  const quietUntil = page.at + groupInterval + 30_000;
  while (Date.now() < quietUntil) {
    await watch();
    await new Promise((r) => setTimeout(r, 1_000));
  }
  expect(problems).toEqual([]);
  // Past group_wait and the group's next flush (group_interval after the page): the one page, nothing else.
  expect(ofGroup().map((n) => ({ status: n.body.status, alerts: n.body.alerts.length }))).toEqual([{ status: 'firing', alerts: 1 }]);
  const am = JSON.parse((await httpGet(stack.amAddress, `/api/v2/alerts?active=true&filter=${encodeURIComponent(`alertname="${ALERT}"`)}`)).body) as { labels: Record<string, string>; startsAt: string }[];
  expect(am.map((a) => a.labels)).toEqual([labels]);
  // The same instant: Alertmanager's API writes milliseconds in full, its webhook trims trailing
  // zeros (`…46.700Z` and `…46.7Z`).
  expect(Date.parse(am[0].startsAt)).toBe(Date.parse(page.body.alerts[0].startsAt));
  expect(Number.isFinite(Date.parse(am[0].startsAt))).toBe(true);
  // The new leader exports the result; the other survivor all 0.
  const newLeader = survivors.find((r) => target(r) === moved[0]) as string;
  const m = await scrape(newLeader);
  expect(sample(m, `aegis_compliance_leader{deployment="${FAILING}"}`)).toBe(1);
  expect(sample(m, `aegis_compliance_check_status{deployment="${FAILING}",check="${CHECK}",check_severity="high",status="fail"}`)).toBe(1);
  const other = await scrape(survivors.find((r) => r !== newLeader) as string);
  expect(sample(other, `aegis_compliance_check_status{deployment="${FAILING}",check="${CHECK}",check_severity="high",status="fail"}`)).toBe(0);
  // eslint-disable-next-line no-console
  console.log(
    `paging from 3 replicas: one page (${page.body.alerts.length} alert) from ${first}; SIGKILL of the leader: ${newLeader} exported the result ${((movedAt - killedAt) / 1000).toFixed(1)} s after the kill ` +
      `(${(gapMs / 1000).toFixed(1)} s with no replica exporting it, bridged by keep_firing_for); the alert stayed firing (same activeAt) and no notification followed the page ` +
      `for ${((Date.now() - page.at) / 1000).toFixed(0)} s, past the group's next flush (group_interval ${groupInterval / 1000} s)`,
  );
}, 420_000);
