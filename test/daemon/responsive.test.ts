/**
 * /metrics and /healthz answer while a check holds the daemon's main thread: the listener
 * runs on a thread of its own, and the compliance series it serves are the ones set before
 * the scrape. Polled from another process (this test's own thread is the one held).
 */
import { spawn } from 'node:child_process';
import { startDaemon, type Daemon } from '../../src/daemon';
import { startServer, startingState, type RunningServer } from '../../src/daemon/server';
import { silentLogger } from '../../src/core/logger';
import { config, get, sample, stubCheck, testRegistry, waitFor } from './helpers';

interface Polled {
  path: string;
  startMs: number;
  ms: number;
  status: number;
  body: string;
  error?: string;
}

/** Polls `paths` of `address` in turn from a child process for `forMs`; every request, its start (wall clock), duration and answer. */
function poll(address: string, paths: string[], forMs: number): { started: Promise<void>; done: Promise<Polled[]> } {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
  const script = `
    const http = require('node:http');
    const out = [];
    const paths = ${JSON.stringify(paths)};
    const until = Date.now() + ${forMs};
    const ask = (path) => new Promise((resolve) => {
      const startMs = Date.now(); const t0 = performance.now();
      const req = http.get({ host: ${JSON.stringify(host)}, port: ${port}, path, agent: false, timeout: 10000 }, (res) => {
        let body = ''; res.setEncoding('utf8'); res.on('data', (d) => (body += d));
        res.on('end', () => { out.push({ path, startMs, ms: performance.now() - t0, status: res.statusCode, body: path === '/metrics' ? body : body.trim() }); resolve(); });
      });
      req.on('timeout', () => req.destroy(new Error('timed out after 10 s')));
      req.on('error', (e) => { out.push({ path, startMs, ms: performance.now() - t0, status: 0, body: '', error: e.message }); resolve(); });
    });
    (async () => {
      process.stderr.write('polling\\n');
      for (let i = 0; Date.now() < until; i++) { await ask(paths[i % paths.length]); await new Promise((r) => setTimeout(r, 25)); }
      process.stdout.write(JSON.stringify(out));
    })();
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  let onStarted!: () => void;
  const started = new Promise<void>((r) => (onStarted = r));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('polling')) onStarted();
  });
  const done = new Promise<Polled[]>((resolve, reject) => {
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(stdout) as Polled[]);
      } catch {
        reject(new Error(`the poller exited ${code} without its results; stderr: ${stderr.slice(-2000)}; stdout: ${stdout.slice(-500)}`));
      }
    });
  });
  return { started, done };
}

/** Holds this thread for `ms` without yielding, as a check's synchronous work does. */
function hold(ms: number): { startMs: number; endMs: number } {
  const startMs = Date.now();
  while (Date.now() - startMs < ms) {
    // busy: no event loop turn
  }
  return { startMs, endMs: Date.now() };
}

const describeAnswers = (xs: Polled[]) => xs.map((x) => `${x.path} at +${x.startMs - xs[0].startMs} ms: ${x.status} in ${x.ms.toFixed(0)} ms${x.error ? ` (${x.error})` : ''}`).join('\n');

const open: Daemon[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await Promise.all(servers.splice(0).map((s) => s.close(1_000)));
});

test('a check holding the main thread for 2 s: /metrics and /healthz answer within 500 ms throughout, with the series set before it', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let held: { startMs: number; endMs: number } | undefined;
  const registry = testRegistry([
    stubCheck('quick', async ({ measure }) => measure('widgets_seen', 42), { severity: 'high' }),
    stubCheck('holder', async () => {
      await gate;
      held = hold(2_000);
    }),
  ]);
  const d = await startDaemon({ loaded: config('deployment: busy\n', registry), registry, listen: '127.0.0.1:0', logger: silentLogger() });
  open.push(d);
  await waitFor(async () => sample((await get(d.address, '/metrics')).body, 'aegis_compliance_check_status{check="quick",check_severity="high",status="pass"}') === 1, 'quick exported', 30_000);

  const poller = poll(d.address, ['/metrics', '/healthz'], 4_000);
  await poller.started;
  await new Promise((r) => setTimeout(r, 300));
  release();
  const answers = await poller.done;
  await d.ready;
  expect(held).toBeDefined();
  const { startMs, endMs } = held as { startMs: number; endMs: number };
  expect(endMs - startMs).toBeGreaterThanOrEqual(2_000);

  // In flight while the main thread was held (but for its last half second): each answered within the bound.
  const during = answers.filter((a) => a.startMs <= endMs - 500 && a.startMs + a.ms >= startMs);
  const context = `held ${startMs}..${endMs}\n${describeAnswers(answers)}`;
  for (const a of during) {
    expect({ path: a.path, status: a.status, fast: a.ms <= 500, context }).toEqual({ path: a.path, status: 200, fast: true, context });
    if (a.path === '/healthz') expect(a.body).toBe('ok');
    else {
      expect(sample(a.body, 'aegis_compliance_check_status{check="quick",check_severity="high",status="pass"}')).toBe(1);
      expect(sample(a.body, 'aegis_compliance_widgets_seen{check="quick"}')).toBe(42);
      expect(sample(a.body, 'aegis_compliance_check_status{check="holder",check_severity="critical",status="pass"}')).toBe(0);
      // The process's figures are there too (the held thread's own: its last answer).
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) expect({ name, there: sample(a.body, name) !== undefined }).toEqual({ name, there: true });
    }
  }
  // ... and they kept coming: several of each while it was held.
  const asked = (path: string) => during.filter((a) => a.path === path && a.startMs >= startMs).length;
  expect({ metrics: asked('/metrics') >= 3, healthz: asked('/healthz') >= 3, context }).toEqual({ metrics: true, healthz: true, context });
  // After it: the holder's result is exported.
  await waitFor(async () => sample((await get(d.address, '/metrics')).body, 'aegis_compliance_check_status{check="holder",check_severity="critical",status="pass"}') === 1, 'holder exported', 30_000);
}, 120_000);

test("/healthz fails while the main thread has stopped running for longer than the stall bound, and recovers", async () => {
  const server = await startServer({ ...startingState(), starting: false }, '127.0.0.1:0', silentLogger(), { stalledAfterMs: 1_000 });
  servers.push(server);
  expect((await get(server.address, '/healthz')).status).toBe(200);
  const poller = poll(server.address, ['/healthz'], 7_000);
  await poller.started;
  await new Promise((r) => setTimeout(r, 300));
  const { startMs, endMs } = hold(3_500);
  const answers = await poller.done;
  const context = `held ${startMs}..${endMs}\n${describeAnswers(answers)}`;
  // Late in the stall: 503 naming it, answered at once; after it: ok again.
  const late = answers.filter((a) => a.startMs >= startMs + 2_500 && a.startMs <= endMs - 100);
  expect({ some: late.length > 0, context }).toEqual({ some: true, context });
  for (const a of late) expect({ status: a.status, body: a.body, fast: a.ms <= 500, context }).toEqual({ status: 503, body: expect.stringMatching(/^the checks' thread has not run for \d+ s$/), fast: true, context });
  const after = answers.filter((a) => a.startMs >= endMs + 1_500);
  expect({ some: after.length > 0, context }).toEqual({ some: true, context });
  for (const a of after) expect(a.status).toBe(200);
}, 60_000);
