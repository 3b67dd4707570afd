/**
 * receipt-chain at scale, on a real Postgres with a sandbox chain of N rows, with the default
 * config. Prints figures; asserts nothing. For each size (default 100 000 and 1 000 000):
 *
 *  0. the machine's limit, measured in this run: libsodium crypto_sign_verify_detached over
 *     the chain's own signatures on every core at once, no I/O, the threads taking them in
 *     chunks as a pass's workers take batches (bench/verify-limit.ts) — before the first pass
 *     and after each, with each thread's µs a signature (a machine's cores are not always equal);
 *  1. the first pass, as a user runs it: `aegis-audit run --config audit.yaml --checks
 *     receipt-chain` (a child process), --rounds times (3) from an empty state: each pass's
 *     rows/s as a ratio of the mean of the limits measured just before and after it (the
 *     machine's speed moves over minutes; other work slows both alike), and their median; the
 *     whole command's wall time, peak RSS (VmHWM), CPU time per row by thread and the Postgres
 *     server's, and the workers' share of the cores by tenth of the check's own time (what the
 *     pass reaches once started, and what its start costs);
 *  2. +1 % rows and the incremental run, as a whole process: wall time and its ratio to the
 *     first pass's whole command;
 *  3. start-up: `aegis-audit --version`, `aegis-audit checks list` and a bare `node -e 0`;
 *  4. (--daemon) the daemon during a first pass of the same chain: /metrics and /healthz
 *     latency (p50, p99, max) while the pass runs, the event-loop delay of the daemon's HTTP
 *     thread over it and the longest of its main thread (what explains the figures);
 *     --daemon-only runs this step alone (no limit, no CLI runs, no start-up figures);
 *  5. (--rolling) rolling re-verification cycles 15 minutes apart (the default schedule and
 *     rehash_period 24 h) and how long a tampered old row takes to be found.
 *
 *   npm run build && node dist/bench/receipt-chain.js [rows…] [--daemon | --daemon-only] [--rolling] [--limit-sample=N] [--rounds=N]
 *   (AEGIS_BENCH_DAEMON_NODE_FLAGS adds node flags to the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof";
 *   AEGIS_BENCH_NODE_FLAGS to the CLI runs, e.g. V8's "--no-lazy-feedback-allocation", which NODE_OPTIONS refuses)
 *
 * Every figure is printed with the load average at the time.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { get } from 'node:http';
import { Client } from 'pg';
import { registry } from '../checks';
import { loadConfig } from '../src/config/load';
import { runAudit } from '../src/app/audit';
import { buildSandbox, type Sandbox } from '../src/sandbox/build';
import { freePort, startEmbeddedPostgres, type RunningPostgres } from '../src/sandbox/embedded-postgres';
import { cpuOf, postgresCpu, statCpuS } from './lib/proc';
import type { CheckResult, Report } from '../src/core/types';
import { loadSignatures, verifyLimit, type Signatures } from './verify-limit';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
/** The node flags of the image's entrypoint (`ENTRYPOINT ["node", …flags, "bin/aegis-audit.js"]`): the CLI runs as the image runs it. */
const NODE_FLAGS: string[] = (() => {
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(resolve(__dirname, '../../Dockerfile'), 'utf8'));
  const argv = m ? (JSON.parse(m[1]) as string[]) : [];
  return argv.slice(1, argv.indexOf('bin/aegis-audit.js')).filter((a) => a.startsWith('--'));
})();
const CYCLE_MS = 15 * 60_000;

const fig = (r: CheckResult, name: string) => r.measurements?.find((m) => m.name === name)?.value ?? NaN;
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const n = (x: number) => Math.round(x).toLocaleString('en-US').replace(/,/g, ' ');
const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;

interface ChildRun {
  code: number;
  wallS: number;
  /** Peak resident set (VmHWM), KiB, as last seen before the process ended. */
  peakKb: number;
  /** CPU time of the process, all threads (user + system), seconds. */
  cpuS: number;
  /** CPU time by thread as last seen (a thread that ended less than 50 ms after a sample loses the rest), seconds, largest first. */
  threads: { name: string; cpuS: number }[];
  /** CPU time of the Postgres server's processes over the run (its backends included), seconds. */
  postgresS: number;
  /** The verifying threads' CPU seconds as each sample saw them (wall clock, ms): counted from the sample where a thread first bears the workers' name. */
  verifying: { atMs: number; cpuS: number }[];
  stderr: string;
}

/** The name the signature workers give their threads (checks/lib/signature-worker.ts): their CPU, apart from their start, is verifying. */
const WORKER_THREAD = 'aegis-verify';

/** node flags to try on the CLI runs besides the image's (AEGIS_BENCH_NODE_FLAGS, space-separated): V8's own flags cannot go in NODE_OPTIONS. */
const CLI_EXTRA_FLAGS = (process.env.AEGIS_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

/** Runs the CLI as a child process, sampling its peak RSS and CPU time from /proc; `postmaster`: the Postgres server whose CPU the run is charged. */
function runCli(args: string[], postmaster: number | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ChildRun> {
  const pgCpu = () => (postmaster === undefined ? NaN : postgresCpu(postmaster));
  return new Promise((resolveRun) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [...NODE_FLAGS, ...CLI_EXTRA_FLAGS, CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    let peakKb = 0;
    let cpuS = 0;
    const pg0 = pgCpu();
    const threads = new Map<string, { name: string; cpuS: number }>();
    const verifying: { atMs: number; cpuS: number }[] = [];
    /** Per worker thread: its CPU when first seen under the workers' name (what it spent starting is not verifying). */
    const workerBase = new Map<string, number>();
    const sample = () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
        const now = cpuOf(child.pid as number);
        if (Number.isFinite(now)) cpuS = now;
        for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
          const name = Number(tid) === child.pid ? 'main' : readFileSync(`/proc/${child.pid}/task/${tid}/comm`, 'utf8').trim();
          const t = statCpuS(`/proc/${child.pid}/task/${tid}/stat`);
          if (Number.isFinite(t)) threads.set(tid, { name: `${name} ${tid}`, cpuS: t });
          if (name === WORKER_THREAD && Number.isFinite(t) && !workerBase.has(tid)) workerBase.set(tid, t);
        }
        let v = 0;
        for (const [tid, base] of workerBase) v += (threads.get(tid)?.cpuS ?? base) - base;
        verifying.push({ atMs: Date.now(), cpuS: v });
      } catch {
        // gone
      }
    };
    const timer = setInterval(sample, 50);
    child.on('exit', (code) => {
      clearInterval(timer);
      const byCpu = [...threads.values()].filter((t) => t.cpuS > 0).sort((a, b) => b.cpuS - a.cpuS);
      resolveRun({ code: code ?? -1, wallS: Number(process.hrtime.bigint() - t0) / 1e9, peakKb, cpuS, threads: byCpu, postgresS: pgCpu() - pg0, verifying, stderr });
    });
  });
}

/** The verifying threads' CPU over [fromMs, toMs] (wall clock) as a share of all the machine's cores, from the samples (linear between two). */
function verifyingShare(series: ChildRun['verifying'], fromMs: number, toMs: number): number {
  const at = (t: number): number => {
    if (series.length === 0 || t <= series[0].atMs) return series[0]?.cpuS ?? 0;
    for (let i = 1; i < series.length; i++) {
      const a = series[i - 1];
      const b = series[i];
      if (t <= b.atMs) return a.cpuS + ((b.cpuS - a.cpuS) * (t - a.atMs)) / Math.max(1, b.atMs - a.atMs);
    }
    return series[series.length - 1].cpuS;
  };
  return (at(toMs) - at(fromMs)) / ((availableParallelism() * (toMs - fromMs)) / 1000);
}

function timeCommand(args: string[], times = 5): Promise<number[]> {
  return (async () => {
    const out: number[] = [];
    for (let i = 0; i < times; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<void>((r) => execFile(process.execPath, args, () => r()));
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return out;
  })();
}

async function limit(sigs: Signatures): Promise<{ perSecond: number; cpuUs: number; threadUs: number[] }> {
  const r = await verifyLimit(sigs);
  if (r.valid !== sigs.count) throw new Error(`the limit run found ${sigs.count - r.valid} signatures invalid: the chain is not clean`);
  return { perSecond: r.perSecond, cpuUs: r.cpuMicrosPerSignature, threadUs: r.threadMicrosPerSignature };
}

function freshState(sandbox: Sandbox): string {
  const loaded = loadConfig(sandbox.configPath, { registry });
  const dir = loaded.config.state.dir as string;
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

/** The HTTP thread's event-loop delay in a /metrics body, as `p50 …, p99 …, max … ms`. */
function servingDelay(body: string): string | undefined {
  const ms = (label: string) => {
    const m = new RegExp(`^aegis_audit_http_eventloop_delay_${label}_seconds (\\S+)$`, 'm').exec(body);
    return m ? Number(m[1]) * 1000 : undefined;
  };
  const [p50, p99, max] = [ms('p50'), ms('p99'), ms('max')];
  if (p50 === undefined || p99 === undefined || max === undefined) return undefined;
  return `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(1)} ms`;
}

/** Polls /metrics and /healthz of a daemon doing a first pass; latencies until the pass ends. */
async function daemonDuringPass(sandbox: Sandbox, rows: number): Promise<void> {
  freshState(sandbox);
  const port = await freePort();
  const extra = (process.env.AEGIS_BENCH_DAEMON_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...NODE_FLAGS, ...extra, CLI, 'daemon', '--config', sandbox.configPath, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  // The pass starts when the check says so in the daemon's log: requests asked before it (the
  // daemon's own start-up, answered once its state is there) are counted apart.
  let passStarted = false;
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (passStarted) return;
    log = (log + d.toString()).slice(-4096);
    passStarted = log.includes('Verifying the whole receipt chain');
  });
  const lat: Record<'/metrics' | '/healthz', number[]> = { '/metrics': [], '/healthz': [] };
  const before: number[] = [];
  const ask = (path: '/metrics' | '/healthz') =>
    new Promise<string | undefined>((r) => {
      const t0 = process.hrtime.bigint();
      const during = passStarted;
      const req = get({ host: '127.0.0.1', port, path, timeout: 5_000 }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          (during ? lat[path] : before).push(Number(process.hrtime.bigint() - t0) / 1e6);
          r(body);
        });
      });
      req.on('error', () => r(undefined));
      req.on('timeout', () => req.destroy());
    });
  const t0 = Date.now();
  let idle: typeof lat | undefined;
  let loadDuring = '';
  let started = false;
  let progressSeen = 0;
  let mainLagMaxS = 0;
  let serving: string | undefined;
  try {
    for (;;) {
      const body = await ask('/metrics');
      await ask('/healthz');
      if (body === undefined) {
        if (started || Date.now() - t0 > 60_000) throw new Error('the daemon stopped answering');
        lat['/metrics'] = [];
        lat['/healthz'] = [];
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      started = true;
      const m = /aegis_compliance_check_rows_processed_total\{[^}]*check="receipt-chain"[^}]*\} (\d+)/.exec(body);
      if (m) progressSeen = Math.max(progressSeen, Number(m[1]));
      // The main thread's longest event-loop delay in the second before it last sent its series.
      const lag = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(body);
      if (lag) mainLagMaxS = Math.max(mainLagMaxS, Number(lag[1]));
      serving = servingDelay(body) ?? serving;
      if (/aegis_compliance_check_last_run_timestamp_seconds\{[^}]*check="receipt-chain"[^}]*\} [1-9]/.test(body)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // The same daemon with nothing running, as long again as a 30 s sample: what the machine's
    // load alone does to the latencies (other work on a shared machine delays any thread).
    const during = { '/metrics': lat['/metrics'], '/healthz': lat['/healthz'] };
    lat['/metrics'] = [];
    lat['/healthz'] = [];
    loadDuring = load();
    const idleUntil = Date.now() + 30_000;
    while (Date.now() < idleUntil) {
      await ask('/metrics');
      await ask('/healthz');
      await new Promise((r) => setTimeout(r, 20));
    }
    idle = { '/metrics': lat['/metrics'], '/healthz': lat['/healthz'] };
    lat['/metrics'] = during['/metrics'];
    lat['/healthz'] = during['/healthz'];
  } finally {
    child.kill('SIGTERM');
  }
  const s = (xs: number[]) => `p50 ${median(xs).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms over ${xs.length} requests`;
  console.log(`4. daemon (\`node ${NODE_FLAGS.map((f) => `${f} `).join('')}bin/aegis-audit.js daemon --config …\`) during a first pass of ${n(rows)} rows (load average ${loadDuring} at its end), from the check's first log line to its result:`);
  console.log(`     /metrics ${s(lat['/metrics'])}`);
  console.log(`     /healthz ${s(lat['/healthz'])}`);
  if (before.length > 0) console.log(`   before the pass (the daemon starting; both paths): ${s(before)}`);
  if (idle) {
    console.log(`   the same daemon idle for 30 s after the pass (load average ${load()}):`);
    console.log(`     /metrics ${s(idle['/metrics'])}`);
    console.log(`     /healthz ${s(idle['/healthz'])}`);
  }
  console.log(`     the HTTP thread's event-loop delay from the daemon's start to the pass's end: ${serving ?? 'not exported'}`);
  console.log(`     the main (checks') thread's longest event-loop delay over the run: ${(mainLagMaxS * 1000).toFixed(1)} ms (the largest nodejs_eventloop_lag_max_seconds seen; each covers the second before the thread sent it)`);
  console.log(`     progress counter seen during the pass: up to ${n(progressSeen)} rows`);
}

async function rolling(sandbox: Sandbox): Promise<void> {
  const loaded = loadConfig(sandbox.configPath, { registry });
  let clock = Date.now();
  const cycle = async (advanceMs: number) => {
    clock += advanceMs;
    const report = await runAudit(loaded, registry, { only: ['receipt-chain'], now: () => new Date(clock) });
    return report.results[0];
  };
  const costs: { rows: number; ms: number }[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await cycle(CYCLE_MS);
    costs.push({ rows: fig(r, 'receipt_rows_reverified'), ms: r.durationMs });
  }
  console.log(
    `   rolling re-verification, cycles 15 min apart, rehash_period 24h: ${costs.map((c) => `${c.rows} rows in ${c.ms} ms`).join('; ')} ` +
      `(median ${median(costs.map((c) => c.ms))} ms per cycle; load average ${load()})`,
  );
  const stateDir = loaded.config.state.dir as string;
  const cpFile = readdirSync(stateDir).find((f) => readFileSync(join(stateDir, f), 'utf8').includes('"rehash"')) as string;
  const cursor = (JSON.parse(readFileSync(join(stateDir, cpFile), 'utf8')) as { rehash: { cursor: number } }).rehash.cursor;
  const c = new Client({ connectionString: sandbox.postgresUrl });
  await c.connect();
  await c.query(`UPDATE audit_log SET payload = jsonb_set(payload, '{tampered}', 'true') WHERE id = $1`, [cursor]);
  await c.end();
  let cycles = 0;
  let computeMs = 0;
  let found = false;
  while (!found && cycles < 200) {
    const r = await cycle(CYCLE_MS);
    cycles++;
    computeMs += r.durationMs;
    found = r.findings.some((f) => f.resource === `row=${cursor}` && f.severity !== 'info');
  }
  console.log(
    `   row ${cursor} altered just behind the rolling cursor: ${found ? `found after ${cycles} cycles = ${((cycles * CYCLE_MS) / 3_600_000).toFixed(2)} h on the deployment's clock` : `NOT found in ${cycles} cycles`} ` +
      `(${(computeMs / 1000).toFixed(1)} s of checking in all)`,
  );
}

async function bench(rows: number, pg: RunningPostgres, dir: string, flags: { daemon: boolean; daemonOnly: boolean; rolling: boolean; sample: number; rounds: number }): Promise<void> {
  console.log(`\n=== ${n(rows)} rows ===`);
  let t = Date.now();
  const sandbox = await buildSandbox({ dir: join(dir, `sandbox-${rows}`), seed: 1, rows, violations: 'none', adminUrl: pg.adminUrl, cloud: false });
  console.log(`sandbox built in ${((Date.now() - t) / 1000).toFixed(1)} s (load average ${load()})`);
  try {
    if (flags.daemonOnly) {
      await daemonDuringPass(sandbox, rows);
      return;
    }
    const sigs = await loadSignatures(sandbox.postgresUrl, 'public.audit_log', sandbox.plan.receiptKeys.map((k) => k.publicKeyPem), flags.sample);
    // 0 + 1: the limit, then each pass followed by the limit again. The machine's own speed moves
    // (a third between two minutes, seen on a quiet machine), so each pass is stated against the
    // limits measured just before and just after it, and the median of the passes' ratios is the figure.
    const out = join(dir, `out-${rows}`);
    const command = `node ${NODE_FLAGS.map((f) => `${f} `).join('')}bin/aegis-audit.js run --config ${sandbox.configPath} --checks receipt-chain --out ${out}`;
    const limits = [{ ...(await limit(sigs)), load: load() }];
    const passes: { run: ChildRun; r: CheckResult; verified: number; load: string }[] = [];
    for (let i = 0; i < flags.rounds; i++) {
      freshState(sandbox);
      const run = await runCli(['run', '--config', sandbox.configPath, '--checks', 'receipt-chain', '--out', out], pg.pid);
      const loadDuring = load();
      const r = (JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report).results[0];
      passes.push({ run, r, verified: fig(r, 'receipt_rows_verified'), load: loadDuring });
      limits.push({ ...(await limit(sigs)), load: load() });
    }
    console.log(`0. limit (libsodium crypto_sign_verify_detached, ${availableParallelism()} threads, ${n(sigs.count)} of the chain's signatures, no I/O), before the first pass and after each:`);
    console.log(
      `   ${limits.map((l) => `${n(l.perSecond)}/s (${l.cpuUs.toFixed(1)} µs CPU per signature; by thread ${l.threadUs.map((u) => u.toFixed(1)).join(' and ')} µs of wall clock; load ${l.load})`).join(', ')}`,
    );
    console.log(`1. first pass, ${passes.length} times from an empty state: \`${command}\``);
    const ratios: number[] = [];
    const wholeRatios: number[] = [];
    const ceilings: number[] = [];
    const restShares: number[] = [];
    passes.forEach((p, i) => {
      const around = (limits[i].perSecond + limits[i + 1].perSecond) / 2;
      const verifyCpuUs = (limits[i].cpuUs + limits[i + 1].cpuUs) / 2;
      const checkRate = p.verified / (p.r.durationMs / 1000);
      const wholeRate = p.verified / p.run.wallS;
      const passCpuUs = (p.run.cpuS * 1e6) / p.verified;
      const us = (sec: number) => `${((sec * 1e6) / p.verified).toFixed(1)}`;
      ratios.push(checkRate / around);
      wholeRatios.push(wholeRate / around);
      ceilings.push(verifyCpuUs / passCpuUs);
      console.log(
        `   pass ${i + 1}: exit ${p.run.code}, ${p.r.status}${p.r.error ? ` (${p.r.error})` : ''}: ${n(p.verified)} rows verified in ${(p.r.durationMs / 1000).toFixed(1)} s = ${n(checkRate)} rows/s; ` +
          `RATIO ${(checkRate / around).toFixed(2)} of the limit around it (${n(around)}/s), ${(wholeRate / around).toFixed(2)} for the whole command (${p.run.wallS.toFixed(1)} s wall); load ${p.load}`,
      );
      console.log(
        `     peak RSS ${mib(p.run.peakKb)}; CPU ${passCpuUs.toFixed(1)} µs per row for the whole command (all threads, start-up included) against ${verifyCpuUs.toFixed(1)} µs for the signature alone: ` +
          `on cores of its own at most ${(verifyCpuUs / passCpuUs).toFixed(2)} of the limit; by thread: ${p.run.threads.map((t) => `${t.name} ${us(t.cpuS)}`).join(', ')}; the Postgres server ${us(p.run.postgresS)}`,
      );
      // Where the check's time goes: the workers' share of the cores by tenth of the check (from
      // /proc, 10 ms ticks sampled every 50 ms). The workers verify at about the bare signature's
      // speed, so a tenth's share is about what the pass reached of the limit in it.
      const from = Date.parse(p.r.startedAt);
      const tenth = p.r.durationMs / 10;
      const tenths = Array.from({ length: 10 }, (_, k) => verifyingShare(p.run.verifying, from + k * tenth, from + (k + 1) * tenth));
      const rest = verifyingShare(p.run.verifying, from + tenth, from + p.r.durationMs);
      restShares.push(rest);
      const pc = (x: number) => `${Math.round(x * 100)} %`;
      console.log(
        `     the workers' share of the ${availableParallelism()} cores over the check: its first tenth (${(tenth / 1000).toFixed(2)} s) ${pc(tenths[0])}, the other nine ${pc(rest)} ` +
          `(by tenth: ${tenths.map((x) => Math.round(x * 100)).join(' ')}); the workers ${((p.run.threads.filter((t) => t.name.startsWith(WORKER_THREAD)).reduce((a, t) => a + t.cpuS, 0) * 1e6) / p.verified).toFixed(1)} µs a row against ${verifyCpuUs.toFixed(1)} bare`,
      );
    });
    console.log(
      `   RATIO, median of ${passes.length}: ${median(ratios).toFixed(2)} (check's own time; each ${ratios.map((x) => x.toFixed(2)).join(', ')}), ` +
        `${median(wholeRatios).toFixed(2)} (whole command); CPU ceiling ${median(ceilings).toFixed(2)}; the workers' share of the cores after the check's first tenth, median ${Math.round(median(restShares) * 100)} %; peak RSS at most ${mib(Math.max(...passes.map((p) => p.run.peakKb)))}`,
    );
    /** The first pass's whole command, as the incremental run is stated against: the median of the passes. */
    const firstWallS = median(passes.map((p) => p.run.wallS));

    // 2. +1 % and the incremental whole-process run.
    const more = Math.max(1, Math.round(rows / 100));
    t = Date.now();
    await sandbox.append(more);
    const appendMs = Date.now() - t;
    const inc = await runCli(['run', '--config', sandbox.configPath, '--checks', 'receipt-chain', '--out', out], pg.pid);
    const ri = (JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report).results[0];
    console.log(`2. +${n(more)} rows (1 %, appended in ${appendMs} ms), incremental run, the same command:`);
    console.log(
      `   exit ${inc.code}, ${ri.status}: ${n(fig(ri, 'receipt_rows_verified'))} new rows verified, ${n(fig(ri, 'receipt_rows_reverified'))} re-verified; check ${ri.durationMs} ms; ` +
        `whole command ${(inc.wallS * 1000).toFixed(0)} ms = ${(inc.wallS / firstWallS).toFixed(3)} of the first pass's whole command (median ${firstWallS.toFixed(1)} s) (load average ${load()})`,
    );

    // 3. start-up.
    const version = await timeCommand([CLI, '--version']);
    const list = await timeCommand([CLI, 'checks', 'list']);
    const bare = await timeCommand(['-e', '0']);
    console.log(
      `3. start-up (median of 5 whole processes): aegis-audit --version ${median(version).toFixed(0)} ms, checks list ${median(list).toFixed(0)} ms; bare \`node -e 0\` ${median(bare).toFixed(0)} ms (load average ${load()})`,
    );

    if (flags.daemon) await daemonDuringPass(sandbox, rows);
    if (flags.rolling) await rolling(sandbox);
  } finally {
    await sandbox.stop();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const sizes = args.filter((a) => !a.startsWith('--')).map(Number);
  const flags = {
    daemon: args.includes('--daemon'),
    daemonOnly: args.includes('--daemon-only'),
    rolling: args.includes('--rolling'),
    sample: Number(args.find((a) => a.startsWith('--limit-sample='))?.split('=')[1] ?? 200_000),
    rounds: Math.max(1, Number(args.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 3)),
  };
  console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, load average ${load()}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-chain-'));
  // The server holds a million rows (560 MB) in its buffers, as one sized for its audit log does:
  // with the default 128 MB they are read through the OS cache at about 2 µs more of the server's
  // CPU per row, on the cores the pass is measured on (a deployment's Postgres has its own).
  const pg = await startEmbeddedPostgres({ settings: { shared_buffers: '1GB' } });
  try {
    for (const rows of sizes.length > 0 ? sizes : [100_000, 1_000_000]) await bench(rows, pg, dir, flags);
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
