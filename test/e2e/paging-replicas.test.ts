/**
 * Paging from replicas, end to end with the real binaries, as an operator runs them: three
 * `aegis-audit daemon` processes sharing a fleet of three sandbox deployments through the queue;
 * one Prometheus scrape job with the three replicas as its targets, evaluating the shipped
 * alerts/aegis-compliance.rules.yml unchanged; Alertmanager routing with
 * alerts/alertmanager.example.yml's own grouping and timing (only the receivers point at this
 * test's webhook).
 *
 * A failing check of one deployment (a PEM key left on disk: pem-files-at-rest, `for: 0s`) is
 * one firing alert and one notification, not three: only the leader exports results. Then the
 * leader is SIGKILLed. What happens, asserted: the old leader's alert (its `instance`) resolves
 * in Prometheus as its target goes down, and the new leader — a standby tries the lock every
 * `queue.publish_interval` — exports the shared result, whose alert fires under its own
 * `instance` within seconds; never two at once. In Alertmanager both are one group (deployment,
 * check) that stays firing: no resolved and no second firing notification before the group's
 * next flush (group_interval, 5 min), which then lists the new alert firing and the old one
 * resolved under the same group key.
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

/** The alerts on the check Prometheus has firing now, by the instance they carry. */
async function firingInstances(): Promise<string[]> {
  const r = await httpGet(stack!.promAddress, `/api/v1/query?query=${encodeURIComponent(`ALERTS{alertname="${ALERT}",alertstate="firing"}`)}`);
  const body = JSON.parse(r.body) as { data?: { result?: { metric: Record<string, string> }[] } };
  return (body.data?.result ?? []).map((x) => x.metric.instance).sort();
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

test('one failing check of one deployment on three replicas is one alert and one page; killing the leader moves it without a resolve or a second page', async () => {
  // Prometheus and Alertmanager first, as in a cluster: one job, the three replicas its targets.
  stack = await startPagingStack({ dir: join(root, 'stack'), targets: REPLICAS.map(target), rulesFile: RULES, alertmanagerConfig: AM_EXAMPLE, jobName: 'aegis-audit' });
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

  // The page: one notification, one alert, from the replica exporting results.
  const page = await waitFor(() => ofGroup().find((n) => n.body.status === 'firing'), `the page for ${CHECK} of ${FAILING}`, 180_000, 100);
  const scrape = async (r: string) => (await httpGet(target(r), '/metrics')).body;
  const leaders = (await Promise.all(REPLICAS.map(async (r) => ({ r, m: await scrape(r) })))).filter((x) => sample(x.m, `aegis_compliance_leader{deployment="${FAILING}"}`) === 1);
  expect(leaders.map((l) => l.r)).toHaveLength(1);
  const first = leaders[0].r;
  expect(page.body.alerts).toHaveLength(1);
  expect(page.body.alerts[0].labels).toMatchObject({ alertname: ALERT, check: CHECK, deployment: FAILING, job: 'aegis-audit', instance: target(first) });
  expect(await firingInstances()).toEqual([target(first)]);
  // Nothing more for a while: three replicas scraped, still one page.
  await new Promise((r) => setTimeout(r, 15_000));
  expect(ofGroup().map((n) => n.body.status)).toEqual(['firing']);
  expect(await firingInstances()).toEqual([target(first)]);

  // Kill the leader mid-flight; watch Prometheus' alerts on the check until another replica's fires.
  children.get(first)?.kill('SIGKILL');
  const killedAt = Date.now();
  const seen: { at: number; instances: string[] }[] = [];
  const moved = await waitFor(
    async () => {
      const instances = await firingInstances();
      seen.push({ at: Date.now(), instances });
      return instances.length > 0 && !instances.includes(target(first)) && instances;
    },
    "the alert to fire from the new leader's instance",
    60_000,
    250,
  );
  const movedAt = Date.now();
  const survivors = REPLICAS.filter((r) => r !== first);
  expect(moved).toHaveLength(1);
  expect(survivors.map(target)).toContain(moved[0]);
  // Never two at once; the time with none firing is the gap.
  expect(Math.max(...seen.map((s) => s.instances.length))).toBeLessThanOrEqual(1);
  const gap = seen.filter((s) => s.instances.length === 0);
  const gapMs = gap.length > 0 ? gap[gap.length - 1].at - gap[0].at + 250 : 0;

  // Past group_wait, short of group_interval: Alertmanager's group has stayed firing and said nothing more.
  await new Promise((r) => setTimeout(r, 40_000));
  expect(ofGroup().map((n) => n.body.status)).toEqual(['firing']);
  const am = JSON.parse((await httpGet(stack.amAddress, `/api/v2/alerts?active=true&filter=${encodeURIComponent(`alertname="${ALERT}"`)}`)).body) as { labels: Record<string, string>; status: { state: string } }[];
  expect(am.map((a) => a.labels.instance)).toEqual([moved[0]]);
  expect(await firingInstances()).toEqual(moved);
  // The new leader exports the result; the other survivor all 0.
  const newLeader = survivors.find((r) => target(r) === moved[0]) as string;
  const m = await scrape(newLeader);
  expect(sample(m, `aegis_compliance_leader{deployment="${FAILING}"}`)).toBe(1);
  expect(sample(m, `aegis_compliance_check_status{deployment="${FAILING}",check="${CHECK}",check_severity="high",status="fail"}`)).toBe(1);
  const other = await scrape(survivors.find((r) => r !== newLeader) as string);
  expect(sample(other, `aegis_compliance_check_status{deployment="${FAILING}",check="${CHECK}",check_severity="high",status="fail"}`)).toBe(0);
  // eslint-disable-next-line no-console
  console.log(
    `paging from 3 replicas: one page (${page.body.alerts.length} alert) from ${first}; SIGKILL of the leader: its alert moved to ${newLeader} ${((movedAt - killedAt) / 1000).toFixed(1)} s after the kill ` +
      `(${(gapMs / 1000).toFixed(1)} s with none firing), no resolved or second notification in the following 40 s (example routing: group_interval 5m)`,
  );
}, 420_000);
