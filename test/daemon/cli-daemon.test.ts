/**
 * `aegis-audit daemon` as an operator runs it: a forked process serving /metrics, reloading
 * its config on SIGHUP (series of checks no longer configured disappear; a bad config is
 * refused and the old one keeps running), exiting 0 on SIGTERM, and 2 on a bad config at start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { getPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expectFreshBuild } from '../helpers/build';
import { childStatus } from './helpers';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
let dir: string;
const children: ChildProcess[] = [];

function fetchText(url: string): Promise<string> {
  return new Promise((ok, fail) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok(body));
    }).on('error', fail);
  });
}

function config(checks: Record<string, { enabled: boolean }>, extra = ''): string {
  return [
    'deployment: cli-daemon-test',
    'services: [gateway, identity]',
    'sources:',
    '  logs: { files: { audit: "logs/*.jsonl" }, window: 7d }',
    '  secrets: { env_files: { gateway: env/gateway.env, identity: env/identity.env } }',
    `state: { dir: state }`,
    `outputs: { dir: ${JSON.stringify(join(dir, 'out'))} }`,
    'checks:',
    ...Object.entries(checks).map(([id, s]) => `  ${id}: { enabled: ${s.enabled} }`),
    extra,
  ].join('\n');
}

/** What the forked daemon is doing, for a wait that timed out. */
let status = (): string => '';

/** Waits (bounded) until `fn` returns something; on timeout says what was awaited and how the daemon is doing. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 45_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${status()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  expectFreshBuild();
  dir = mkdtempSync(join(tmpdir(), 'cli-daemon-'));
  mkdirSync(join(dir, 'logs'));
  mkdirSync(join(dir, 'env'));
  const ts = new Date(Date.now() - 60_000).toISOString();
  writeFileSync(
    join(dir, 'logs', 'audit.jsonl'),
    ['receipt', 'root'].map((key) => JSON.stringify({ ts, service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key, source: key === 'root' ? 'generated' : 'env' })).join('\n') + '\n',
  );
  writeFileSync(join(dir, 'env', 'gateway.env'), 'INTERNAL_SECRET=same-internal-secret-value\n');
  writeFileSync(join(dir, 'env', 'identity.env'), 'INTERNAL_SECRET=same-internal-secret-value\n');
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('serves metrics, reloads on SIGHUP, refuses a bad reload, stops on SIGTERM', async () => {
  const cfg = join(dir, 'audit.yaml');
  writeFileSync(cfg, config({ 'signing-key-source': { enabled: true }, 'internal-secret-drift': { enabled: true } }));
  const child = spawn(process.execPath, [CLI, 'daemon', '--config', cfg, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  status = () => childStatus('daemon', child, () => stdout, () => stderr);
  const address = () => [...stdout.matchAll(/listening on (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]).pop();
  const first = await waitFor('the daemon to listen', address);
  const metrics1 = await waitFor('the first cycle', async () => {
    const m = await fetchText(`${first}/metrics`);
    return /aegis_compliance_check_status\{deployment="cli-daemon-test",check="signing-key-source",check_severity="critical",status="fail"\} 1/.test(m) ? m : undefined;
  });
  expect(metrics1).toMatch(/aegis_compliance_check_status\{deployment="cli-daemon-test",check="internal-secret-drift",check_severity="high",status="pass"\} 1/);
  expect(await fetchText(`${first}/healthz`)).toMatch(/ok/i);

  if (process.platform === 'linux') {
    // The HTTP thread keeps the priority the daemon started with; every other thread runs 5 lower.
    const base = getPriority(0);
    const threads = readdirSync(`/proc/${child.pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8');
      return { tid: Number(tid), name: readFileSync(`/proc/${child.pid}/task/${tid}/comm`, 'utf8').trim(), nice: Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[16]) };
    });
    const http = threads.filter((t) => t.name === 'aegis-http');
    expect(http.map((t) => t.nice)).toEqual([base]);
    const lowered = Math.min(19, base + 10);
    expect(threads.find((t) => t.tid === child.pid)?.nice).toBe(lowered);
    expect(threads.filter((t) => t.name !== 'aegis-http' && t.nice < lowered)).toEqual([]);
  }

  // A good reload: internal-secret-drift is no longer configured, so its series go away.
  writeFileSync(cfg, config({ 'signing-key-source': { enabled: true }, 'internal-secret-drift': { enabled: false } }));
  child.kill('SIGHUP');
  // The address is unchanged, so the reloaded daemon takes over the same listener.
  await waitFor('the reloaded daemon', () => (stderr.includes('Configuration reloaded') ? true : undefined));
  const second = first;
  const metrics2 = await waitFor('the reloaded first cycle', async () => {
    const m = await fetchText(`${second}/metrics`);
    return /check="signing-key-source",check_severity="critical",status="fail"\} 1/.test(m) ? m : undefined;
  });
  expect(metrics2).not.toContain('check="internal-secret-drift"');
  expect(stderr).toContain('Configuration reloaded');

  // A bad reload is refused; the daemon keeps serving the previous config.
  writeFileSync(cfg, config({ 'signing-key-source': { enabled: true } }, 'run: { timeout: never }'));
  child.kill('SIGHUP');
  await waitFor('the refusal', () => (stderr.includes('Config reload failed') ? true : undefined));
  expect(stderr).toContain('run.timeout: invalid duration');
  expect(await fetchText(`${second}/metrics`)).toContain('check="signing-key-source"');

  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
}, 240_000);

test('a bad config at start exits 2 with the problem and no stack trace', async () => {
  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, 'deployment: x\nchecks:\n  no-such-check: {}\n');
  const child = spawn(process.execPath, [CLI, 'daemon', '--config', cfg, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  expect(code).toBe(2);
  expect(stderr).toContain('checks.no-such-check: unknown check id');
  expect(stderr).not.toMatch(/\n\s+at /);
});
