/**
 * A fleet of sandbox deployments on one Postgres, audited as an operator would: `run` over
 * the fleet (and `--deployment`), and the daemon forked from the CLI (its index, each
 * deployment's report and series, a reload adding and removing deployments). One deployment
 * violates, one cannot be reached: only their series, reports and index rows say so. No
 * deployment's secret appears in any output, its own or another's.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildSandboxFleet, type SandboxFleet } from '../../src/sandbox/fleet';
import { freePort } from '../../src/sandbox/embedded-postgres';
import { adminUrl } from '../helpers/pg';
import { findLeaks } from '../helpers/canary';
import { expectFreshBuild } from '../helpers/build';
import { childStatus, sample, waitFor } from '../daemon/helpers';

const execFileP = promisify(execFile);
const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
const ENV = { ...process.env, AEGIS_AUDIT_LOG_LEVEL: 'debug' };

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execFileP('node', [CLI, ...args], { env: ENV, maxBuffer: 64 * 1024 * 1024 }).then(
    (x) => ({ ...x, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => e,
  );
  outputs.set(`run ${args.join(' ')} stdout`, r.stdout);
  outputs.set(`run ${args.join(' ')} stderr`, r.stderr);
  return r;
}

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    httpGet(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    }).on('error', fail);
  });
}

interface IndexJson {
  deployments: { deployment: string; state: string; failing: number; errors: number; lastRun?: string; link?: string }[];
}
const rows = (index: IndexJson) => Object.fromEntries(index.deployments.map((e) => [e.deployment, e.state]));

let root: string;
let fleet: SandboxFleet;
const outputs = new Map<string, string>();
const children: ChildProcess[] = [];

beforeAll(async () => {
  expectFreshBuild();
  root = mkdtempSync(join(tmpdir(), 'fleet-scenario-'));
  fleet = await buildSandboxFleet({
    dir: join(root, 'fleet'),
    adminUrl: adminUrl(),
    rows: 120,
    deployments: [
      { deployment: 'eu' },
      { deployment: 'us', violations: ['broken-link', 'internal-secret-differs', 'log-known-secret'] },
      { deployment: 'apac' },
    ],
  });
  // A fourth deployment whose database does not answer.
  mkdirSync(join(fleet.dir, 'broken'));
  writeFileSync(join(fleet.dir, 'broken', 'audit.yaml'), `deployment: broken\nsources:\n  postgres: { url: "postgres://aegis@127.0.0.1:${await freePort()}/aegis", connect_timeout: 2s }\n`);
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await fleet?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('run audits every deployment: reports and history per deployment, the index lists each, exit code is the worst', async () => {
  const out = join(root, 'out1');
  const r = await cli(['run', '--config', fleet.configPath, '--out', out]);
  expect(r.stderr).not.toContain('internal error');
  expect(r.code).toBe(1);
  expect(r.stdout).toContain('fleet: 4 deployments audited: 1 failing, 1 not evaluated, 2 passing');
  expect(r.stdout).toContain(`index: ${join(out, 'index.html')}`);
  for (const d of ['eu', 'us', 'apac', 'broken']) {
    for (const f of ['report.json', 'report.html', 'checklist.html']) expect(existsSync(join(out, d, f))).toBe(true);
    expect(filesUnder(join(out, 'history', d)).filter((f) => f.endsWith('.json'))).toHaveLength(1);
  }
  const report = (d: string) => JSON.parse(readFileSync(join(out, d, 'report.json'), 'utf8')) as { deployment: string; results: { check: string; status: string }[] };
  const failing = (d: string) => report(d).results.filter((x) => x.status === 'fail').map((x) => x.check).sort();
  expect(report('us').deployment).toBe('us');
  expect(failing('us')).toEqual(expect.arrayContaining(['internal-secret-drift', 'receipt-chain', 'secrets-in-logs']));
  expect(failing('eu')).toEqual([]);
  expect(failing('apac')).toEqual([]);
  expect(report('broken').results.filter((x) => x.status === 'error').map((x) => x.check)).toEqual(['credential-age', 'historical-keys']);
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as IndexJson;
  // Worst first, then in config order (included files in path order).
  expect(index.deployments.map((e) => e.deployment)).toEqual(['us', 'broken', 'apac', 'eu']);
  expect(rows(index)).toEqual({ us: 'fail', broken: 'error', eu: 'pass', apac: 'pass' });
  expect(index.deployments[0]).toMatchObject({ failing: failing('us').length, link: 'us/report.html' });
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  expect(html).toMatch(/data-deployment="us" data-state="fail">\s*<td><a href="us\/report.html">us<\/a>/);
  // The checkpoints of every deployment live in the fleet's one state folder, each keyed by its chain.
  expect(readdirSync(join(fleet.dir, 'state')).filter((f) => f.startsWith('receipt-chain')).length).toBeGreaterThanOrEqual(3);
}, 180_000);

test('run --deployment audits only those; the index keeps the others with their last report or as not run', async () => {
  const out = join(root, 'out2');
  const r = await cli(['run', '--config', fleet.configPath, '--out', out, '--deployment', 'eu', '--deployment', 'apac']);
  expect(r.code).toBe(0);
  expect(existsSync(join(out, 'us'))).toBe(false);
  expect(rows(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as IndexJson)).toEqual({ us: 'not run', broken: 'not run', eu: 'pass', apac: 'pass' });
  const us = await cli(['run', '--config', fleet.configPath, '--out', out, '--deployment', 'us', '--checks', 'receipt-chain']);
  expect(us.code).toBe(1);
  expect(rows(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as IndexJson)).toMatchObject({ us: 'fail', eu: 'pass' });

  const unknown = await cli(['run', '--config', fleet.configPath, '--deployment', 'nope']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('aegis-audit: unknown deployment nope (known: apac, broken, eu, us)');
  const many = await cli(['run', '--config', fleet.configPath, '--json']);
  expect(many.code).toBe(2);
  expect(many.stderr).toContain('select one with --deployment');
  const one = await cli(['run', '--config', fleet.configPath, '--json', '--deployment', 'apac', '--checks', 'historical-keys']);
  expect(one.code).toBe(0);
  expect(JSON.parse(one.stdout)).toMatchObject({ deployment: 'apac', summary: { pass: 1 } });
  const v = await cli(['config', 'validate', fleet.configPath]);
  expect(v.stdout).toContain('valid (a fleet of 4 deployments: apac, broken, eu, us)');
}, 180_000);

test('the daemon audits the fleet: series, reports and index per deployment; a reload adds and removes deployments', async () => {
  const child = spawn('node', [CLI, 'daemon', '--config', fleet.configPath, '--listen', '127.0.0.1:0'], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const daemonStatus = () => childStatus('daemon', child, () => stdout, () => stderr);
  try {
    const address = await waitFor(() => /listening on http:\/\/(\S+)/.exec(stdout)?.[1], () => `the daemon to listen\n${daemonStatus()}`, 60_000);
    const base = `http://${address}`;
    await waitFor(async () => (await fetchText(`${base}/readyz`)).status === 200, () => `the first cycle of every deployment\n${daemonStatus()}`, 120_000, 250);
    const metrics = (await fetchText(`${base}/metrics`)).body;
    const st = (d: string, check: string, s: string) => sample(metrics, `aegis_compliance_check_status{deployment="${d}",check="${check}",check_severity="critical",status="${s}"}`);
    expect(st('us', 'receipt-chain', 'fail')).toBe(1);
    expect(st('eu', 'receipt-chain', 'pass')).toBe(1);
    expect(st('apac', 'receipt-chain', 'fail')).toBe(0);
    expect(st('broken', 'historical-keys', 'error')).toBe(1);
    expect(sample(metrics, 'aegis_compliance_source_up{deployment="broken",source="postgres"}')).toBe(0);
    expect(sample(metrics, 'aegis_compliance_source_up{deployment="eu",source="postgres"}')).toBe(1);
    expect(sample(metrics, 'aegis_compliance_findings{deployment="eu",check="internal-secret-drift",check_severity="high"}')).toBe(0);
    expect(sample(metrics, 'aegis_compliance_findings{deployment="us",check="internal-secret-drift",check_severity="high"}')).toBeGreaterThan(0);

    const index = await fetchText(`${base}/`);
    expect(index.body).toMatch(/data-deployment="us" data-state="fail">\s*<td><a href="us\/report">us<\/a>/);
    expect(index.body).toMatch(/data-deployment="broken" data-state="error">/);
    expect(rows(JSON.parse((await fetchText(`${base}/report.json`)).body) as IndexJson)).toEqual({ us: 'fail', broken: 'error', eu: 'pass', apac: 'pass' });
    // Report files per deployment (and the index beside them), served per deployment.
    const reports = join(fleet.dir, 'reports');
    await waitFor(() => ['eu', 'us', 'apac', 'broken'].every((d) => existsSync(join(reports, d, 'report.html'))) && existsSync(join(reports, 'index.html')), () => `the report files\n${daemonStatus()}`, 60_000);
    const onDisk = await waitFor(() => {
      const ix = JSON.parse(readFileSync(join(reports, 'index.json'), 'utf8')) as IndexJson;
      return ix.deployments.every((e) => e.state !== 'not run') && ix;
    }, () => `the index file to list every deployment as run\n${daemonStatus()}`, 60_000);
    expect(rows(onDisk)).toEqual({ us: 'fail', broken: 'error', eu: 'pass', apac: 'pass' });
    expect(onDisk.deployments.find((e) => e.deployment === 'us')?.link).toBe('us/report.html');
    const usPage = await fetchText(`${base}/us/report`);
    expect(usPage.status).toBe(200);
    expect(usPage.body).toContain('<h1');
    expect(usPage.body).toContain('us');
    expect(JSON.parse((await fetchText(`${base}/eu/report.json`)).body)).toMatchObject({ deployment: 'eu', summary: { fail: 0 } });
    outputs.set('daemon /metrics', metrics);
    outputs.set('daemon /', index.body);
    outputs.set('daemon /us/report', usPage.body);

    // Reload: a deployment added (a copy of eu under another name), one removed.
    cpSync(join(fleet.dir, 'eu', 'audit.yaml'), join(fleet.dir, 'broken', 'audit.yaml.off'));
    rmSync(join(fleet.dir, 'broken', 'audit.yaml'));
    mkdirSync(join(fleet.dir, 'eu2'));
    writeFileSync(join(fleet.dir, 'eu2', 'audit.yaml'), readFileSync(join(fleet.dir, 'eu', 'audit.yaml'), 'utf8').replace(/^deployment: eu$/m, 'deployment: eu2').replace(/: (?!\/)([A-Za-z0-9_.-]+\/)/g, ': ../eu/$1'));
    child.kill('SIGHUP');
    const reloaded = await waitFor(async () => {
      const m = (await fetchText(`${base}/metrics`)).body;
      return sample(m, 'aegis_compliance_check_status{deployment="eu2",check="receipt-chain",check_severity="critical",status="pass"}') === 1 && m;
    }, () => `the added deployment to be audited\n${daemonStatus()}`, 120_000, 250);
    expect(reloaded).not.toContain('deployment="broken"');
    expect(sample(reloaded, 'aegis_compliance_config_reloads_total{deployment="eu2",outcome="success"}')).toBe(1);
    outputs.set('daemon /metrics after reload', reloaded);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
  } finally {
    outputs.set('daemon stdout', stdout);
    outputs.set('daemon stderr', stderr);
  }
}, 420_000);

test('no deployment secret, nor any 8-character piece of one, appears in any output of the fleet', () => {
  for (const f of [...filesUnder(join(root, 'out1')), ...filesUnder(join(root, 'out2')), ...filesUnder(join(fleet.dir, 'reports')), ...filesUnder(join(fleet.dir, 'state'))]) {
    outputs.set(f, readFileSync(f, 'utf8'));
  }
  expect(outputs.size).toBeGreaterThan(40);
  const secrets = fleet.secretValues();
  expect(secrets.length).toBeGreaterThan(10);
  expect(findLeaks(secrets, outputs)).toEqual([]);
});
