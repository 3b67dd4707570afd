/**
 * Which Postgres job queue shares the fleet's checks between replicas: pg-boss or
 * graphile-worker, measured on this machine against embedded Postgres.
 *
 *   npm run build && node dist/bench/queue.js [jobs=3000] [recoveryWaitS=60]
 *
 * For each queue: 3 worker processes (each runs 4 jobs at a time, as `run.concurrency`
 * defaults to; pg-boss 10 polls, so it runs twice: one job per fetch every 0.5 s per slot, as a
 * replica fetches checks, and 10 per fetch to show the queue's own ceiling), then
 *   - enqueue: jobs/s inserting `jobs` jobs in batches of 100 (one scheduler tick's worth);
 *   - drain: jobs/s until the 3 workers completed them all, Postgres CPU over that time (all
 *     postgres processes, from /proc) and the most connections seen (pg_stat_activity);
 *   - latency: 100 jobs enqueued one at a time 50 ms apart, enqueue → handler start, p50/p95;
 *   - crash recovery: a job whose first attempt hangs; the worker holding it is killed with
 *     SIGKILL, and the time until another worker completes it is measured (pg-boss: the job's
 *     expireInSeconds is 5 and maintenance runs every second; graphile-worker: as shipped).
 * Prints one block of figures per queue.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';

type Lib = 'pg-boss' | 'pg-boss-batch10' | 'graphile-worker';
const isBoss = (lib: Lib) => lib.startsWith('pg-boss');
const QUEUE = 'bench';
const PER_WORKER = 4;
const EXPIRE_S = 5;

interface Msg {
  kind: 'ready' | 'start' | 'done';
  id?: string;
  t0?: number;
  at?: number;
  pid?: number;
}

// ---------------------------------------------------------------- worker process
async function worker(lib: Lib, url: string): Promise<void> {
  const send = (m: Msg) => process.send?.({ ...m, pid: process.pid });
  const handle = async (data: { t0: number; tag: string; hang?: boolean }, attempt: number) => {
    send({ kind: 'start', id: data.tag, t0: data.t0, at: Date.now() });
    // The crash job hangs on its first attempt only; the process holding it is killed.
    if (data.hang && attempt <= 1) await new Promise(() => undefined);
    send({ kind: 'done', id: data.tag, t0: data.t0, at: Date.now() });
  };
  if (isBoss(lib)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const PgBoss = require('pg-boss');
    const boss = new PgBoss({ connectionString: url, schema: `bench_${lib.replace(/-/g, '_')}`, max: PER_WORKER + 2, maintenanceIntervalSeconds: 1, schedule: false });
    boss.on('error', () => undefined);
    await boss.start();
    for (let i = 0; i < PER_WORKER; i++) {
      await boss.work(QUEUE, { batchSize: lib === 'pg-boss-batch10' ? 10 : 1, pollingIntervalSeconds: 0.5, includeMetadata: true }, async (jobs: { data: { t0: number; tag: string; hang?: boolean }; retryCount: number }[]) => {
        for (const j of jobs) await handle(j.data, j.retryCount + 1);
      });
    }
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { run } = require('graphile-worker');
    await run({
      connectionString: url,
      schema: 'bench_gw',
      concurrency: PER_WORKER,
      noHandleSignals: true,
      pollInterval: 500,
      logger: new (require('graphile-worker').Logger)(() => () => undefined),
      taskList: {
        [QUEUE]: async (payload: { t0: number; tag: string; hang?: boolean }, helpers: { job: { attempts: number } }) => handle(payload, helpers.job.attempts),
      },
    });
  }
  send({ kind: 'ready' });
}

// ---------------------------------------------------------------- main process
function postgresCpuTicks(postmaster: number): number {
  // The postmaster and its backends (children): utime + stime, in clock ticks.
  let total = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      if (Number(p) !== postmaster && ppid !== postmaster) continue;
      total += Number(fields[11]) + Number(fields[12]);
    } catch {
      continue;
    }
  }
  return total;
}
const TICKS = 100; // USER_HZ on Linux

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Fleet {
  readonly procs: ChildProcess[] = [];
  readonly done = new Map<string, Msg>();
  readonly started = new Map<string, Msg[]>();
  constructor(
    readonly lib: Lib,
    readonly url: string,
  ) {}
  async start(n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => this.spawn()));
  }
  spawn(): Promise<void> {
    const p = fork(__filename, ['worker', this.lib, this.url], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.procs.push(p);
    return new Promise((resolve, reject) => {
      p.on('message', (m: Msg) => {
        if (m.kind === 'ready') resolve();
        else if (m.kind === 'start') this.started.set(m.id as string, [...(this.started.get(m.id as string) ?? []), m]);
        else if (m.kind === 'done') this.done.set(m.id as string, m);
      });
      p.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
    });
  }
  async waitDone(ids: string[], timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (ids.every((id) => this.done.has(id))) return true;
      await sleep(20);
    }
    return false;
  }
  stop(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

interface Enqueuer {
  batch(items: { tag: string; hang?: boolean }[]): Promise<void>;
  close(): Promise<void>;
}

async function enqueuer(lib: Lib, url: string): Promise<Enqueuer> {
  if (isBoss(lib)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const PgBoss = require('pg-boss');
    const boss = new PgBoss({ connectionString: url, schema: `bench_${lib.replace(/-/g, '_')}`, max: 2, supervise: false, schedule: false });
    boss.on('error', () => undefined);
    await boss.start();
    await boss.createQueue(QUEUE, { name: QUEUE, policy: 'standard', retryLimit: 3, retryDelay: 1, expireInSeconds: EXPIRE_S });
    return {
      batch: async (items) => {
        await boss.insert(items.map((d) => ({ name: QUEUE, data: { ...d, t0: Date.now() }, expireInSeconds: EXPIRE_S, retryLimit: 3, retryDelay: 1 })));
      },
      close: () => boss.stop({ graceful: false, wait: true }),
    };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { makeWorkerUtils } = require('graphile-worker');
  const utils = await makeWorkerUtils({ connectionString: url, schema: 'bench_gw' });
  await utils.migrate();
  return {
    batch: async (items) => {
      await utils.addJobs(items.map((d) => ({ identifier: QUEUE, payload: { ...d, t0: Date.now() }, maxAttempts: 3 })));
    },
    close: () => utils.release(),
  };
}

async function maxConnections(url: string, stop: () => boolean): Promise<number> {
  const c = new Client({ connectionString: url });
  await c.connect();
  let max = 0;
  try {
    while (!stop()) {
      const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'");
      max = Math.max(max, Number(r.rows[0].n) - 1);
      await sleep(100);
    }
  } finally {
    await c.end();
  }
  return max;
}

async function benchOne(lib: Lib, url: string, postmaster: number, jobs: number, recoveryWaitS: number): Promise<void> {
  const enq = await enqueuer(lib, url);
  const fleet = new Fleet(lib, url);
  try {
    await fleet.start(3);
    // Enqueue, then drain.
    const tags = Array.from({ length: jobs }, (_, i) => `d${i}`);
    const cpu0 = postgresCpuTicks(postmaster);
    let draining = true;
    const conns = maxConnections(url, () => !draining);
    const e0 = Date.now();
    for (let i = 0; i < tags.length; i += 100) await enq.batch(tags.slice(i, i + 100).map((tag) => ({ tag })));
    const enqMs = Date.now() - e0;
    const ok = await fleet.waitDone(tags, 300_000);
    const drainMs = Date.now() - e0;
    draining = false;
    const cpuS = (postgresCpuTicks(postmaster) - cpu0) / TICKS;
    const maxConn = await conns;
    const lat = tags.map((t) => (fleet.done.get(t)?.at ?? NaN) - (fleet.done.get(t)?.t0 ?? NaN)).filter(Number.isFinite);

    // Latency at a trickle.
    const trickle = Array.from({ length: 100 }, (_, i) => `t${i}`);
    for (const tag of trickle) {
      await enq.batch([{ tag }]);
      await sleep(50);
    }
    await fleet.waitDone(trickle, 60_000);
    const startLat = trickle.map((t) => (fleet.started.get(t)?.[0].at ?? NaN) - (fleet.started.get(t)?.[0].t0 ?? NaN)).filter(Number.isFinite);

    // Crash recovery.
    await enq.batch([{ tag: 'crash', hang: true }]);
    const until = Date.now() + 30_000;
    while (!fleet.started.has('crash') && Date.now() < until) await sleep(10);
    const holder = fleet.started.get('crash')?.[0].pid;
    const victim = fleet.procs.find((p) => p.pid === holder);
    let recovery = 'crash job never started';
    if (victim) {
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      const recovered = await fleet.waitDone(['crash'], recoveryWaitS * 1000);
      const by = fleet.done.get('crash')?.pid;
      recovery = recovered ? `${((Date.now() - killedAt) / 1000).toFixed(1)} s (completed by another process: ${by !== holder})` : `not retried within ${recoveryWaitS} s`;
    }

    console.log(`\n== ${lib} (3 worker processes × ${PER_WORKER} ${lib === 'pg-boss-batch10' ? 'fetch loops of 10 jobs' : 'concurrent jobs'})`);
    console.log(`  enqueue:   ${jobs} jobs in batches of 100: ${((jobs / enqMs) * 1000).toFixed(0)} jobs/s`);
    console.log(`  drain:     ${ok ? '' : 'INCOMPLETE '}${jobs} jobs enqueued+completed in ${(drainMs / 1000).toFixed(1)} s: ${((jobs / drainMs) * 1000).toFixed(0)} jobs/s`);
    console.log(`  latency:   burst enqueue→complete p50 ${pct(lat, 50).toFixed(0)} ms p95 ${pct(lat, 95).toFixed(0)} ms; trickle enqueue→start p50 ${pct(startLat, 50).toFixed(0)} ms p95 ${pct(startLat, 95).toFixed(0)} ms`);
    console.log(`  postgres:  ${cpuS.toFixed(1)} CPU-s over the drain (${((cpuS / (drainMs / 1000)) * 100).toFixed(0)}% of one core, ${((cpuS / jobs) * 1000).toFixed(2)} CPU-ms per job); at most ${maxConn} client connections`);
    console.log(`  recovery:  a job held by a SIGKILLed worker was completed elsewhere after ${recovery}`);
  } finally {
    fleet.stop();
    await enq.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'worker') {
    await worker(process.argv[3] as Lib, process.argv[4]);
    return;
  }
  const jobs = Number(process.argv[2] ?? 3000);
  const recoveryWaitS = Number(process.argv[3] ?? 60);
  const pg = await startEmbeddedPostgres();
  try {
    console.log(`queue bench: embedded Postgres on 127.0.0.1:${pg.port}, ${jobs} jobs, Node ${process.version}`);
    for (const lib of ['pg-boss', 'pg-boss-batch10', 'graphile-worker'] as const) await benchOne(lib, pg.adminUrl, pg.pid as number, jobs, recoveryWaitS);
  } finally {
    await pg.stop();
  }
}

main().then(
  () => {
    if (process.argv[2] !== 'worker') process.exit(0);
  },
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
