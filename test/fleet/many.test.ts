/**
 * Many deployments on many replicas, as operators run them: 20 sandbox deployments in one fleet
 * config (`include:` of their audit.yaml files), three `aegis-audit daemon` processes with
 * `queue:` on one Postgres. Asserted from the shared run log (fleet_runs), the queue's own
 * table, each replica's /metrics and the report files: every check of every deployment runs
 * once per schedule tick; a replica SIGKILLed mid-check has every run it held completed by
 * another within two periods; no check of a deployment ever runs twice at once; every
 * deployment's results are exported by exactly one replica.
 *
 * Each deployment runs every built-in check its config enables (all of them: the members have
 * no cloud side, so the checks of SSM, CloudWatch Logs, Vault and the TLS endpoints run and
 * report `skipped`, as they do for any deployment without those sources), plus one plugin check
 * that takes a known time (the run to kill). Measured (bench/check-cost.ts, one member of 40
 * rows, in one process): about 0.4-0.7 s of CPU for all of them per deployment; on the
 * replicas (bench/fleet-replicas.ts `all`) 13.5 runs/s on this 2-core machine at load 10, so
 * 20 × 20 runs take half a minute of it: the period is a minute, and the test prints what the
 * replicas' CPU cost per period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { builtinChecks } from '../../checks';
import { buildSandboxFleet, type SandboxFleet } from '../../src/sandbox/fleet';
import { expectFreshBuild } from '../helpers/build';
import { adminUrl, createTestDatabase } from '../helpers/pg';
import { sample } from '../daemon/helpers';
import { fetchText, sql } from './helpers';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
const DEPLOYMENTS = Array.from({ length: 20 }, (_, i) => `d${String(i).padStart(2, '0')}`);
/** d00's services disagree on INTERNAL_SECRET: its internal-secret-drift fails, nobody else's. */
const VIOLATING = 'd00';
/** Every built-in check: a member's config enables them all. */
const BUILTIN = builtinChecks.map((c) => c.meta.id);
const PROBE = 'fleet-probe';
const CHECKS = [...BUILTIN, PROBE];
/** Every check of every deployment runs every PERIOD_S seconds; the probe takes 2.5 s. */
const PERIOD_S = 60;
/** Every minute, on the minute. */
const SCHEDULE = '0 * * * * *';
const PROBE_MS = 2500;
/** A built-in check's timeout: generous, a loaded machine stretches a run's wall time many times. */
const CHECK_TIMEOUT_S = 30;
const REPLICAS = ['r1', 'r2', 'r3'];

let root: string;
let fleet: SandboxFleet;
let db: { url: string; drop: () => Promise<void> };
const children = new Map<string, ChildProcess>();
const logs = new Map<string, string>();

const query = <T>(text: string, params: unknown[] = []): Promise<T[]> => sql<T>(db.url, text, params);

function startReplica(name: string): void {
  const child = spawn(process.execPath, [CLI, 'daemon', '--config', fleet.configPath, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AEGIS_AUDIT_REPLICA: name, AEGIS_AUDIT_LOG_LEVEL: 'info' },
  });
  logs.set(name, '');
  // Kept to its last 256 KiB: the address line is read from it, and its tail is printed on a timeout.
  const append = (c: Buffer) => logs.set(name, ((logs.get(name) ?? '') + c.toString()).slice(-262_144));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  children.set(name, child);
}

/** CPU seconds (user + system, every thread) a replica has used so far, from /proc. */
function cpuSeconds(name: string): number {
  const pid = children.get(name)?.pid;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

const address = (name: string) => [...(logs.get(name) ?? '').matchAll(/listening on (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]).pop();

/** What every replica is doing: exit status and the tail of its output. */
function diagnostics(): string {
  return [...children].map(([name, c]) => `--- replica ${name}: ${c.exitCode === null && c.signalCode === null ? 'running' : `exited (code ${c.exitCode}, signal ${c.signalCode})`}; last output:\n${(logs.get(name) ?? '').slice(-3000)}`).join('\n');
}

/** Polls until `fn` returns a truthy value; on timeout throws what it waited for with every replica's state. */
async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs: number,
  everyMs = 200,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}\n${diagnostics()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

beforeAll(async () => {
  expectFreshBuild();
  db = await createTestDatabase('fleetmany');
  root = mkdtempSync(join(tmpdir(), 'aegis-fleet-many-'));
  fleet = await buildSandboxFleet({
    dir: join(root, 'fleet'),
    adminUrl: adminUrl(),
    rows: 40,
    deployments: DEPLOYMENTS.map((deployment) => ({ deployment, violations: deployment === VIOLATING ? ['internal-secret-differs'] : 'none' })),
  });
  mkdirSync(join(fleet.dir, 'plugins'));
  writeFileSync(
    join(fleet.dir, 'plugins', 'probe.js'),
    `'use strict';
const { defineCheck, z } = require('aegis-audit/plugin');
module.exports = defineCheck({
  meta: { id: '${PROBE}', title: 'Fleet probe finishes its work', description: 'Takes a known time, for the queue tests.', severity: 'low', sources: [],
    schedule: '${SCHEDULE}', checklist: [], runbook: 'https://example.invalid/${PROBE}', remediation: 'Nothing to do: a test check.' },
  messages: { late: 'Late {{x}}.' },
  options: z.object({}),
  async run() { await new Promise((r) => setTimeout(r, ${PROBE_MS})); },
});
`,
  );
  // The generated fleet config, with the replicas' queue and the checks of this test.
  const config = parse(readFileSync(fleet.configPath, 'utf8')) as { defaults: Record<string, unknown> };
  const checks: Record<string, unknown> = {};
  // Each its timeout too: a check's own (receipt-chain's 14 minutes) would hold a killed replica's run that long.
  for (const id of BUILTIN) checks[id] = { schedule: SCHEDULE, timeout: `${CHECK_TIMEOUT_S}s` };
  checks[PROBE] = { timeout: '4s' };
  writeFileSync(
    fleet.configPath,
    stringify({
      // Slots to spare on the two survivors (a pg-boss slot takes at most one job a second):
      // 400 runs per period, 20 of them 2.5 s, the others 0.1-1.5 s on a loaded machine, take
      // at most about 450 slot-seconds of their 960.
      fleet: { concurrency: 8, max_per_deployment: 4 },
      plugins: ['./plugins'],
      queue: {
        url: db.url,
        schema: 'aegis_fleet',
        concurrency: 8,
        replica: '${AEGIS_AUDIT_REPLICA}',
        expire_grace: '1s',
        retry_delay: '1s',
        maintenance_interval: '1s',
        publish_interval: '1s',
      },
      ...config,
      defaults: { ...config.defaults, run: { timeout: `${CHECK_TIMEOUT_S}s` }, checks },
    }),
  );
}, 300_000);

afterAll(async () => {
  for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  await fleet?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  await db?.drop();
});

interface Run {
  job_id: string;
  attempt: number;
  deployment: string;
  check_id: string;
  tick: Date;
  replica: string;
  started_at: Date;
  finished_at: Date | null;
  outcome: string | null;
}
const ms = (d: Date | string | null) => (d === null ? NaN : new Date(d).getTime());

test('3 replicas, 20 deployments: every check of every deployment once per tick, a killed replica\'s runs complete elsewhere, never two at once, one exporter per deployment', async () => {
  for (const r of REPLICAS) startReplica(r);
  await waitFor(() => REPLICAS.every((r) => address(r)), 'three replicas to listen', 120_000, 250);

  // Every check of every deployment has run once (the leader's first cycle enqueues them all).
  await waitFor(
    async () => Number((await query<{ n: string }>(`SELECT count(DISTINCT (deployment, check_id)) AS n FROM aegis_fleet.fleet_runs WHERE outcome IS NOT NULL`))[0].n) === DEPLOYMENTS.length * CHECKS.length,
    `a first run of each of the ${DEPLOYMENTS.length * CHECKS.length} checks`,
    120_000,
    500,
  );
  // The window of whole ticks starts at the next tick.
  const firstTick = Math.ceil((Date.now() + 1000) / (PERIOD_S * 1000)) * PERIOD_S * 1000;
  await waitFor(() => Date.now() >= firstTick, 'the first tick of the window', 2 * PERIOD_S * 1000, 20);
  const cpuAtFirstTick = new Map(REPLICAS.map((r) => [r, cpuSeconds(r)]));
  const loadFrom = loadavg()[0];
  await waitFor(() => Date.now() > firstTick + 1000, 'the first tick of the window', 2 * PERIOD_S * 1000);

  // A probe running somewhere for half a second, with a second of its 2.5 s still to go: kill its replica with SIGKILL, mid-check.
  const victim = await waitFor(
    async () =>
      (
        await query<Run>(
          `SELECT * FROM aegis_fleet.fleet_runs WHERE check_id = $1 AND finished_at IS NULL AND started_at < now() - interval '500 milliseconds' AND started_at > now() - interval '1500 milliseconds' ORDER BY started_at LIMIT 1`,
          [PROBE],
        )
      )[0],
    'a probe to be running',
    3 * PERIOD_S * 1000,
    50,
  );
  const victimName = victim.replica;
  const cpuAtKill = new Map([[victimName, cpuSeconds(victimName)]]);
  children.get(victimName)?.kill('SIGKILL');
  const killedAt = Date.now();
  // Everything the victim held at that moment (the probe, and whatever else it was running).
  const held = (await query<Run>('SELECT * FROM aegis_fleet.fleet_runs WHERE replica = $1 AND finished_at IS NULL', [victimName])).filter((r) => ms(r.started_at) <= killedAt);
  expect(held.map((r) => r.job_id)).toContain(victim.job_id);

  // Each held run is retried by a surviving replica and completes there, within two periods.
  const retried = await waitFor(
    async () => {
      const rows = await query<Run>('SELECT * FROM aegis_fleet.fleet_runs WHERE job_id = ANY($1::uuid[]) AND replica <> $2 AND finished_at IS NOT NULL', [held.map((h) => h.job_id), victimName]);
      return held.every((h) => rows.some((r) => r.job_id === h.job_id && r.attempt > h.attempt)) && rows;
    },
    `the ${held.length} runs of the killed replica to complete elsewhere`,
    2 * PERIOD_S * 1000 + 30_000,
    100,
  );
  const failoverMs = Math.max(...retried.map((r) => ms(r.finished_at))) - killedAt;
  for (const r of retried) expect({ job: r.job_id, outcome: r.outcome }).toEqual({ job: r.job_id, outcome: r.check_id === PROBE ? 'pass' : expect.stringMatching(/^(pass|fail|skipped)$/) });
  expect(failoverMs).toBeLessThan(2 * PERIOD_S * 1000);

  // One more whole tick on the two survivors, after the failover; the window ends once the last tick's runs are done.
  const lastTick = (Math.floor(Date.now() / (PERIOD_S * 1000)) + 1) * PERIOD_S * 1000;
  const ticks: number[] = [];
  for (let t = firstTick; t <= lastTick; t += PERIOD_S * 1000) ticks.push(t);
  // The window ends once the last tick's runs are done: the leader has enqueued the tick (one
  // insert, or a few batched moments apart: ten seconds after it), and no job of that tick or an
  // earlier one is still queued, waiting to retry or running. Not "every check has a run of the
  // tick": a check whose earlier run was still out at the tick skips it, as a single daemon does
  // (the assertions below hold each skip to that rule).
  const lastIso = new Date(lastTick).toISOString();
  const unfinished = () =>
    query<{ deployment: string; check_id: string; tick: string; state: string }>(
      `SELECT data->>'deployment' AS deployment, data->>'check' AS check_id, data->>'tick' AS tick, state::text AS state FROM aegis_fleet.job WHERE name = 'aegis-audit-checks' AND data->>'tick' <= $1 AND state < 'completed' ORDER BY 3, 1, 2`,
      [lastIso],
    );
  let stillOut: string[] = [];
  await waitFor(
    async () => {
      if (Date.now() < lastTick + 10_000) return false;
      const enqueued = Number((await query<{ n: string }>(`SELECT count(*) AS n FROM aegis_fleet.job WHERE name = 'aegis-audit-checks' AND data->>'tick' = $1`, [lastIso]))[0].n);
      stillOut = (await unfinished()).map((j) => `${j.deployment}/${j.check_id} ${j.tick} ${j.state}`);
      return enqueued > 0 && stillOut.length === 0;
    },
    'the runs of the last tick of the window',
    4 * PERIOD_S * 1000,
    500,
    () => `jobs of ${lastIso} or before still out (${stillOut.length}): ${stillOut.slice(0, 40).join('; ')}`,
  );
  const windowEnd = Date.now();
  // What the window cost the replicas (every thread; the victim's up to its kill), per period.
  const windowCpu = REPLICAS.reduce((sum, r) => sum + (cpuAtKill.get(r) ?? cpuSeconds(r)) - (cpuAtFirstTick.get(r) ?? 0), 0);
  const loadTo = loadavg()[0];

  const runs = await query<Run>('SELECT * FROM aegis_fleet.fleet_runs ORDER BY started_at');
  // Nothing runs twice concurrently: per (deployment, check), attempts never overlap (the killed replica's end when it died).
  const overlaps: string[] = [];
  for (const d of DEPLOYMENTS) {
    for (const id of CHECKS) {
      const mine = runs
        .filter((r) => r.deployment === d && r.check_id === id)
        .map((r) => ({ start: ms(r.started_at), end: r.finished_at ? ms(r.finished_at) : r.replica === victimName ? killedAt : windowEnd }));
      for (let i = 1; i < mine.length; i++) if (mine[i - 1].end > mine[i].start) overlaps.push(`${d}/${id}: ${mine[i - 1].end - mine[i].start} ms`);
    }
  }
  expect(overlaps).toEqual([]);
  // Each tick is one job: no job has two first attempts, the queue holds one job per (deployment, check, tick).
  const firstAttempts = runs.filter((r) => r.attempt === 1);
  expect(new Set(firstAttempts.map((r) => r.job_id)).size).toBe(firstAttempts.length);
  expect(await query(`SELECT data->>'deployment', data->>'check', data->>'tick', count(*) FROM aegis_fleet.job WHERE name = 'aegis-audit-checks' GROUP BY 1, 2, 3 HAVING count(*) > 1`)).toEqual([]);

  // Once per period: for each tick T of the window every check of every deployment completed a
  // run of T, or of a catch-up tick in the period before T (a replica taking the lead enqueues
  // every check at once). Or of a catch-up tick in the period after T, each run standing for
  // one tick: a leader killed while it still enqueued T's runs (the victim is often the leader,
  // killed seconds after a tick) leaves those it had not enqueued to its successor's catch-up,
  // moments later. Or a run of an earlier tick was still queued or running at T: the leader then
  // skips T for that check, as a single daemon does (a loaded machine, or a job the dead replica
  // had taken, held until it expired). The kill may cost a check one tick (its run held by the
  // dead replica until it expired); nothing else may be missing, and no check runs much more often.
  const P = PERIOD_S * 1000;
  const heldChecks = new Set(held.map((h) => `${h.deployment}/${h.check_id}`));
  const catchUps = [...new Set(runs.filter((r) => ms(r.tick) >= firstTick && ms(r.tick) % P !== 0).map((r) => new Date(r.tick).toISOString()))];
  const missing: string[] = [];
  /** Ticks a check skipped because its run of an earlier tick was still out. */
  let skipped = 0;
  const often: string[] = [];
  for (const d of DEPLOYMENTS) {
    for (const id of CHECKS) {
      const mine = runs.filter((r) => r.deployment === d && r.check_id === id);
      const done = [...new Set(mine.filter((r) => r.finished_at && r.outcome !== 'crashed').map((r) => ms(r.tick)))];
      // Each job (every attempt of one tick's run): its tick, and when its last attempt ended (never: still out).
      const jobs = new Map<string, { tick: number; end: number }>();
      for (const r of mine) {
        const end = r.finished_at && r.outcome !== 'crashed' ? ms(r.finished_at) : Number.POSITIVE_INFINITY;
        const j = jobs.get(r.job_id);
        jobs.set(r.job_id, { tick: ms(r.tick), end: j ? Math.max(j.end === Number.POSITIVE_INFINITY ? 0 : j.end, end) : end });
      }
      const pendingAt = (t: number) => [...jobs.values()].some((j) => j.tick < t && j.end > t);
      const used = new Set<number>();
      const take = (ok: (x: number) => boolean) => {
        const x = done.find((y) => !used.has(y) && ok(y));
        if (x !== undefined) used.add(x);
        return x !== undefined;
      };
      const unrun = ticks.filter((t) => !take((x) => x > t - P && x <= t) && !take((x) => x % P !== 0 && x > t && x < t + P));
      const lost = unrun.filter((t) => !pendingAt(t));
      skipped += unrun.length - lost.length;
      if (lost.length > (heldChecks.has(`${d}/${id}`) ? 1 : 0)) {
        const around = mine.map((r) => `${new Date(r.tick).toISOString()}#${r.attempt} ${r.replica} ${new Date(r.started_at).toISOString()}→${r.finished_at ? new Date(r.finished_at).toISOString() : 'open'} ${r.outcome}`);
        missing.push(`${d}/${id}: ticks ${lost.map((t) => new Date(t).toISOString()).join(', ')} (runs: ${around.join('; ')})`);
      }
      // At most: each tick, the startup cycle and one catch-up.
      const inWindow = done.filter((x) => x > firstTick - P && x <= lastTick).length;
      if (inWindow > ticks.length + 2) often.push(`${d}/${id}: ${inWindow} runs for ${ticks.length} ticks`);
    }
  }
  expect({ missing, often, victim: victimName, killedAt: new Date(killedAt).toISOString(), catchUps }).toEqual({ missing: [], often: [], victim: victimName, killedAt: new Date(killedAt).toISOString(), catchUps });
  // Every run in the window evaluated its check or found its sources absent (skipped): none errored (a timeout, a source it could not read).
  const windowRuns = runs.filter((r) => ms(r.started_at) >= firstTick && r.finished_at);
  expect(windowRuns.filter((r) => !['pass', 'fail', 'skipped'].includes(r.outcome ?? '')).map((r) => `${r.deployment}/${r.check_id} ${r.outcome} on ${r.replica}`)).toEqual([]);
  // The work spread over every replica.
  expect(new Set(runs.map((r) => r.replica))).toEqual(new Set(REPLICAS));

  // Every deployment's results are exported by exactly one live replica; the other exports them all 0.
  const alive = REPLICAS.filter((r) => r !== victimName);
  const scraped = await Promise.all(alive.map(async (r) => ({ r, m: await fetchText(`${address(r)}/metrics`) })));
  for (const d of DEPLOYMENTS) {
    const exporters = scraped.filter((s) => sample(s.m, `aegis_compliance_leader{deployment="${d}"}`) === 1);
    expect({ d, exporters: exporters.length }).toEqual({ d, exporters: 1 });
    const results = (s: string) => (s.match(new RegExp(`aegis_compliance_check_status\\{deployment="${d}",[^}]*status="(pass|fail|skipped)"\\} 1`, 'g')) ?? []).length;
    expect({ d, results: results(exporters[0].m) }).toEqual({ d, results: CHECKS.length });
    for (const s of scraped.filter((x) => x !== exporters[0])) expect({ d, results: results(s.m) }).toEqual({ d, results: 0 });
  }
  const leader = scraped.find((s) => sample(s.m, `aegis_compliance_leader{deployment="${VIOLATING}"}`) === 1) as { r: string; m: string };
  expect(sample(leader.m, `aegis_compliance_check_status{deployment="${VIOLATING}",check="internal-secret-drift",check_severity="high",status="fail"}`)).toBe(1);
  expect(sample(leader.m, `aegis_compliance_check_status{deployment="d01",check="internal-secret-drift",check_severity="high",status="pass"}`)).toBe(1);
  for (const s of scraped) expect(s.m).toMatch(new RegExp(`aegis_audit_queue_jobs_total\\{replica="${s.r}",outcome="pass"\\} [1-9]`));

  // Reports per deployment and the fleet's index, written by the leader from the shared results.
  const reports = join(fleet.dir, 'reports');
  const index = await waitFor(() => {
    if (!existsSync(join(reports, 'index.json'))) return undefined;
    const ix = JSON.parse(readFileSync(join(reports, 'index.json'), 'utf8')) as { deployments: { deployment: string; state: string }[] };
    return ix.deployments.every((e) => e.state !== 'not run') && ix;
  }, 'the index to list every deployment as run', 30_000);
  expect(Object.fromEntries(index.deployments.map((e) => [e.deployment, e.state]))).toEqual(Object.fromEntries(DEPLOYMENTS.map((d) => [d, d === VIOLATING ? 'fail' : 'pass'])));
  for (const d of DEPLOYMENTS) {
    const report = JSON.parse(readFileSync(join(reports, d, 'report.json'), 'utf8')) as { deployment: string; results: { check: string }[] };
    expect({ d, checks: report.results.map((r) => r.check).sort() }).toEqual({ d, checks: [...CHECKS].sort() });
  }

  // A graceful stop hands running work back at once; the survivors exit 0.
  for (const r of alive) {
    const c = children.get(r) as ChildProcess;
    const exited = new Promise<number | null>((res) => c.once('exit', (code) => res(code)));
    c.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
  const inWindow = runs.filter((r) => ms(r.started_at) >= firstTick && ms(r.started_at) <= windowEnd && r.finished_at);
  // eslint-disable-next-line no-console
  console.log(
    `fleet of ${DEPLOYMENTS.length} deployments × ${CHECKS.length} checks on 3 replicas: ${inWindow.length} runs in ${((windowEnd - firstTick) / 1000).toFixed(0)} s ` +
      `(${(inWindow.length / ((windowEnd - firstTick) / 1000)).toFixed(1)} runs/s; by replica ${REPLICAS.map((r) => `${r} ${inWindow.filter((x) => x.replica === r).length}`).join(', ')}); ` +
      `SIGKILL of ${victimName} holding ${held.length} runs: all completed elsewhere ${(failoverMs / 1000).toFixed(1)} s after the kill; ` +
      `${skipped} ticks skipped by a check whose earlier run was still out; ` +
      `outcomes ${JSON.stringify(windowRuns.reduce<Record<string, number>>((m, r) => ({ ...m, [String(r.outcome)]: (m[String(r.outcome)] ?? 0) + 1 }), {}))}; ` +
      `replicas' CPU ${windowCpu.toFixed(1)} s over ${ticks.length} periods of ${PERIOD_S} s (${(windowCpu / ticks.length).toFixed(1)} s a period); load average ${loadFrom.toFixed(1)} → ${loadTo.toFixed(1)}`,
  );
}, 1_000_000);
