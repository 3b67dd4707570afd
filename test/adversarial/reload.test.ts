/**
 * Issue 9, case 2: a reload that validates but cannot start killed `daemon`. The old daemon
 * was closed before the new one started; with the new `server.listen` on a busy port the
 * process exited 3 and the old port stopped answering. A reload now starts the new daemon
 * beside the old one and swaps only once it runs: a failure leaves the old one serving, is
 * logged and counted in aegis_compliance_config_reloads_total{outcome="failure"}.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/sandbox/embedded-postgres';
import { fetchText, fork, requireBuild, waitFor, type Forked } from './helpers';

let dir: string;
const running: Forked[] = [];
const blockers: Server[] = [];

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'adv-reload-'));
  mkdirSync(join(dir, 'env'));
  writeFileSync(join(dir, 'env', 'gateway.env'), 'INTERNAL_SECRET=reload_test_internal_value\n');
});
afterAll(async () => {
  for (const f of running) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  await Promise.all(blockers.map((b) => new Promise((r) => b.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

function config(port: number): string {
  return [
    'deployment: adversarial-reload',
    'services: [gateway]',
    'sources:',
    '  secrets: { env_files: { gateway: env/gateway.env } }',
    `outputs: { dir: ${JSON.stringify(join(dir, 'out'))} }`,
    `server: { listen: "127.0.0.1:${port}" }`,
  ].join('\n');
}

/** Something else listening on a port, as another process would. */
async function occupy(port: number): Promise<Server> {
  const s = createServer();
  await new Promise<void>((ok, fail) => {
    s.once('error', fail);
    s.listen(port, '127.0.0.1', () => ok());
  });
  blockers.push(s);
  return s;
}

const reloadsOf = (metrics: string, outcome: string) => Number(new RegExp(`^aegis_compliance_config_reloads_total\\{deployment="[^"]+",outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1]);
const answers = async (port: number) => (await fetchText(`http://127.0.0.1:${port}/healthz`).catch(() => ({ status: 0, body: '' }))).status === 200;

test('a reload to a busy address keeps the old daemon serving and counts the failure; a later good reload moves it', async () => {
  const [a, b] = [await freePort(), await freePort()];
  const cfg = join(dir, 'audit.yaml');
  writeFileSync(cfg, config(a));
  const d = fork(['daemon', '--config', cfg]);
  running.push(d);
  await waitFor('the daemon on the first address', async () => ((await answers(a)) ? true : undefined));
  const metricsA = (await fetchText(`http://127.0.0.1:${a}/metrics`)).body;
  expect({ success: reloadsOf(metricsA, 'success'), failure: reloadsOf(metricsA, 'failure') }).toEqual({ success: 0, failure: 0 });

  // The new config validates, but its address is taken.
  const blocker = await occupy(b);
  writeFileSync(cfg, config(b));
  d.child.kill('SIGHUP');
  await waitFor('the refused reload', () => (d.stderr().includes('Config reload failed') ? true : undefined));
  expect(d.stderr()).toMatch(/EADDRINUSE/);
  expect(d.child.exitCode).toBeNull();
  expect(await answers(a)).toBe(true);
  const after = (await fetchText(`http://127.0.0.1:${a}/metrics`)).body;
  expect({ success: reloadsOf(after, 'success'), failure: reloadsOf(after, 'failure') }).toEqual({ success: 0, failure: 1 });
  expect(after).toMatch(/aegis_compliance_check_status\{deployment="[^"]+",check="internal-secret-drift"/);

  // The address frees up: the same file now reloads, and the daemon moves.
  await new Promise((r) => blocker.close(r));
  d.child.kill('SIGHUP');
  await waitFor('the daemon on the second address', async () => ((await answers(b)) ? true : undefined));
  await waitFor('the first address to close', async () => (!(await answers(a)) ? true : undefined));
  const moved = (await fetchText(`http://127.0.0.1:${b}/metrics`)).body;
  expect({ success: reloadsOf(moved, 'success'), failure: reloadsOf(moved, 'failure') }).toEqual({ success: 1, failure: 1 });

  d.child.kill('SIGTERM');
  expect(await d.exited).toEqual({ code: 0, signal: null });
}, 180_000);

test('a reload on the same address never stops answering', async () => {
  const port = await freePort();
  const cfg = join(dir, 'same.yaml');
  writeFileSync(cfg, config(port));
  const d = fork(['daemon', '--config', cfg]);
  running.push(d);
  await waitFor('the daemon', async () => ((await answers(port)) ? true : undefined));
  let polling = true;
  let failures = 0;
  let polls = 0;
  const poller = (async () => {
    while (polling) {
      polls++;
      if (!(await answers(port))) failures++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  for (let i = 0; i < 3; i++) {
    const before = (d.stderr().match(/Configuration reloaded/g) ?? []).length;
    d.child.kill('SIGHUP');
    await waitFor('the reload', () => ((d.stderr().match(/Configuration reloaded/g) ?? []).length > before ? true : undefined));
  }
  polling = false;
  await poller;
  expect(polls).toBeGreaterThan(3);
  expect(failures).toBe(0);
  d.child.kill('SIGTERM');
  expect(await d.exited).toEqual({ code: 0, signal: null });
}, 180_000);
