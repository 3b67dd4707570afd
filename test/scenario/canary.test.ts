/**
 * Canary: every secret value the sandbox wrote (env values, private-key bytes) — nor any
 * 8-character piece of one — appears in stdout, stderr, any report, the history or the
 * auditor's stored state, after two full runs of the real CLI at debug log level.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import { adminUrl } from '../helpers/pg';
import { findLeaks } from '../helpers/canary';
import { expectFreshBuild } from '../helpers/build';

const run = promisify(execFile);
const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

let root: string;
let sandbox: Sandbox;
const outputs = new Map<string, string>();

beforeAll(async () => {
  expectFreshBuild();
  root = mkdtempSync(join(tmpdir(), 'canary-'));
  sandbox = await buildSandbox({ dir: join(root, 'sandbox'), seed: 5, rows: 400, violations: 'all', adminUrl: adminUrl() });
  const out = join(root, 'reports');
  for (const pass of [1, 2]) {
    const r = await run('node', [CLI, 'run', '--config', sandbox.configPath, '--out', out], {
      env: { ...process.env, AEGIS_AUDIT_LOG_LEVEL: 'debug' },
      maxBuffer: 64 * 1024 * 1024,
    }).catch((e: { stdout: string; stderr: string; code: number }) => e);
    outputs.set(`stdout (run ${pass})`, r.stdout);
    outputs.set(`stderr (run ${pass})`, r.stderr);
    expect((r as { code?: number }).code ?? 0).toBe(1); // the sandbox has failing findings
  }
  for (const f of [...filesUnder(out), ...filesUnder(join(sandbox.dir, 'state'))]) outputs.set(f, readFileSync(f, 'utf8'));
}, 120_000);

afterAll(async () => {
  await sandbox?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('the runs wrote every output and logged at debug level', () => {
  const names = [...outputs.keys()].map((k) => k.split('/').pop());
  for (const f of ['report.json', 'report.html', 'checklist.html', 'report.junit.xml', 'report.sarif']) expect(names).toContain(f);
  expect(names.some((n) => n?.startsWith('receipt-chain'))).toBe(true); // the checkpoint
  expect(outputs.get('stderr (run 1)')).toMatch(/"level":20/);
  expect(JSON.parse(outputs.get([...outputs.keys()].find((k) => k.endsWith('report.json')) as string) as string).summary.fail).toBeGreaterThan(0);
});

test('the repository scan found what the sandbox planted in the checkout, and each planted token is a canary', () => {
  const report = JSON.parse(outputs.get([...outputs.keys()].find((k) => k.endsWith('report.json')) as string) as string) as { results: { check: string; findings: { resource: string }[] }[] };
  const repo = report.results.find((r) => r.check === 'repo-secret-scan');
  expect(repo?.findings.map((f) => f.resource)).toContain('file=aegis:aegis/config/settings.py,detector=known-secret,secret=INTERNAL_SECRET');
  expect(repo?.findings.map((f) => f.resource)).toContain('file=aegis:scripts/notify-release.sh,detector=slack-webhook');
  for (const s of sandbox.plan.repoTree.secrets) expect(sandbox.secretValues()).toContain(s);
});

test('no secret value, nor any 8-character piece of one, appears in any output', () => {
  const secrets = sandbox.secretValues();
  expect(secrets.length).toBeGreaterThanOrEqual(10);
  expect(findLeaks(secrets, outputs).slice(0, 20)).toEqual([]);
});
