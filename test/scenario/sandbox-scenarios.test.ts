/**
 * The audit finds exactly what the sandbox seeded: each violation alone (cloud ones
 * included), random combinations over several seeds, none, all, the demo's default mix, and
 * all with hostile strings — nothing missed, nothing extra. One sandbox runs every check.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { compareWithManifest } from '../../src/app/compare';
import { DEFAULT_DEMO_VIOLATIONS } from '../../src/app/demo';
import { buildSandbox, type BuildOptions, type Manifest } from '../../src/sandbox/build';
import { SANDBOX_AWS_ENV } from '../../src/sandbox/cloud';
import { VIOLATION_IDS, listViolations, resolveViolations } from '../../src/sandbox/violations';
import type { Report } from '../../src/core/types';
import { adminUrl } from '../helpers/pg';
import { expectFreshBuild } from '../helpers/build';
import { mulberry32 } from '../helpers/rng';

// Every test builds a sandbox (Postgres database, cloud emulators, identity side) and runs every
// check: seconds on a quiet machine, far more with two suites on two busy cores.
jest.setTimeout(180_000);

const root = mkdtempSync(join(tmpdir(), 'scenarios-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The identity side (TLS endpoints, OIDC issuer) starts with the cloud side: Vault names its JWKS and holds the enrolled list.
const CLOUD_ONLY_CHECKS = ['model-artifact-signature', 'runtime-secrets-present', 'ssm-persisted-secrets', 'vault-token-hygiene', 'auth-mode', 'mtls-enforced', 'oidc-jwks'];

async function audit(
  name: string,
  seed: number,
  violations: BuildOptions['violations'],
  extra: Pick<BuildOptions, 'cloud' | 'hostile'> = {},
): Promise<{ report: Report; manifest: Manifest; markers: string[] }> {
  const sandbox = await buildSandbox({ dir: join(root, name), seed, rows: 240, violations, adminUrl: adminUrl(), ...extra });
  try {
    const report = await runAudit(loadConfig(sandbox.configPath, { registry }), registry);
    return { report, manifest: sandbox.manifest, markers: sandbox.hostileMarkers() };
  } finally {
    await sandbox.stop();
  }
}

function evaluatedErrors(report: Report): string[] {
  return report.results.filter((r) => r.status === 'error').map((r) => `${r.check}: ${r.error}`);
}

function statuses(report: Report): Record<string, string> {
  return Object.fromEntries(report.results.map((r) => [r.check, r.status]));
}

test('with no violation seeded every check of the catalog is evaluated and passes, in-process and in a forked `run`', async () => {
  const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
  expectFreshBuild();
  const sandbox = await buildSandbox({ dir: join(root, 'none'), seed: 11, rows: 240, violations: 'none', adminUrl: adminUrl() });
  try {
    expect(sandbox.manifest.violations).toEqual([]);
    const report = await runAudit(loadConfig(sandbox.configPath, { registry }), registry);
    expect(evaluatedErrors(report)).toEqual([]);
    expect(report.summary).toEqual({ pass: registry.size, fail: 0, error: 0, skipped: 0 });
    expect(Object.keys(statuses(report)).sort()).toEqual([...registry.keys()].sort());
    // A child process finds the AWS credentials the config names: the sandbox set them for its lifetime.
    const out = join(root, 'none-forked');
    // Jest gives each test file its own copy of process.env, which child_process does not see
    // unless passed on; outside jest the sandbox's variables are in the real environment.
    const child = await promisify(execFile)('node', [CLI, 'run', '--config', sandbox.configPath, '--out', out], { env: { ...process.env } });
    expect(child.stderr).not.toMatch(/AEGIS_SANDBOX_AWS/);
    const forked = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    expect(forked.summary).toEqual({ pass: registry.size, fail: 0, error: 0, skipped: 0 });
  } finally {
    await sandbox.stop();
  }
  // Nothing of the cloud side lingers in the environment once the sandbox stopped.
  expect(process.env[SANDBOX_AWS_ENV.access_key_id]).toBeUndefined();
  expect(process.env[SANDBOX_AWS_ENV.secret_access_key]).toBeUndefined();
}, 240_000);

test('without the cloud side the cloud checks are skipped, the rest pass, and cloud violations are refused', async () => {
  const { report } = await audit('no-cloud', 12, 'none', { cloud: false });
  const s = statuses(report);
  expect(CLOUD_ONLY_CHECKS.map((c) => s[c])).toEqual(CLOUD_ONLY_CHECKS.map(() => 'skipped'));
  expect(report.summary).toEqual({ pass: registry.size - CLOUD_ONLY_CHECKS.length, fail: 0, error: 0, skipped: CLOUD_ONLY_CHECKS.length });
  expect(resolveViolations('all', { cloud: false })).not.toContain('vault-root-token');
  await expect(buildSandbox({ dir: join(root, 'refused'), seed: 1, rows: 240, violations: ['vault-root-token'], adminUrl: adminUrl(), cloud: false })).rejects.toThrow(
    /"vault-root-token" needs the sandbox's cloud side/,
  );
});

test.each([...VIOLATION_IDS])('violation %s alone is found exactly', async (id) => {
  const { report, manifest } = await audit(id, 3, [id]);
  expect(manifest.violations.length).toBeGreaterThan(0);
  const c = compareWithManifest(report, manifest);
  expect({ missed: c.missed, extra: c.extra }).toEqual({ missed: [], extra: [] });
  expect(evaluatedErrors(report)).toEqual([]);
  // Every other check still passes: a violation breaks only the check it is declared for.
  const failing = report.results.filter((r) => r.status === 'fail').map((r) => r.check);
  expect(failing).toEqual([...new Set(manifest.violations.map((e) => e.check))].sort());
});

test.each([...registry.keys()])('check %s can be made to fail: seeded with its violations, it fails, naming them', async (id) => {
  // Selected by check id: every violation declared for it. A check with none fails here.
  expect(listViolations().filter((v) => v.check === id).length).toBeGreaterThan(0);
  const sandbox = await buildSandbox({ dir: join(root, `fails-${id}`), seed: 17, rows: 240, violations: [id], adminUrl: adminUrl() });
  try {
    const report = await runAudit(loadConfig(sandbox.configPath, { registry }), registry, { only: [id] });
    const r = report.results.find((x) => x.check === id);
    expect({ id, status: r?.status, error: r?.error }).toEqual({ id, status: 'fail', error: null });
    const expected = sandbox.manifest.violations.filter((e) => e.check === id).map((e) => e.resource).sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(r?.findings.filter((f) => f.severity !== 'info').map((f) => f.resource).sort()).toEqual(expected);
  } finally {
    await sandbox.stop();
  }
});

test.each([101, 202, 303, 404, 505])('a random combination of violations (seed %i) is found exactly', async (seed) => {
  const rnd = mulberry32(seed);
  const chosen = VIOLATION_IDS.filter(() => rnd() < 0.45);
  const { report, manifest } = await audit(`combo-${seed}`, seed, chosen.length ? [...chosen] : ['api-key-old']);
  const c = compareWithManifest(report, manifest);
  expect({ seed, chosen, missed: c.missed, extra: c.extra }).toEqual({ seed, chosen, missed: [], extra: [] });
  expect(evaluatedErrors(report)).toEqual([]);
});

test('all violations together are found exactly', async () => {
  const { report, manifest } = await audit('all', 9, 'all');
  const c = compareWithManifest(report, manifest);
  expect({ missed: c.missed, extra: c.extra }).toEqual({ missed: [], extra: [] });
  expect(c.expected).toBeGreaterThanOrEqual(VIOLATION_IDS.length);
  expect(report.summary).toEqual({ pass: 0, fail: registry.size, error: 0, skipped: 0 });
});

test("the demo's default mix is found exactly, and every check it does not seed passes", async () => {
  const { report, manifest } = await audit('demo-default', 42, DEFAULT_DEMO_VIOLATIONS);
  const c = compareWithManifest(report, manifest);
  expect({ missed: c.missed, extra: c.extra }).toEqual({ missed: [], extra: [] });
  const seededChecks = new Set(manifest.violations.map((e) => e.check));
  const s = statuses(report);
  for (const check of registry.keys()) expect(`${check}: ${s[check]}`).toBe(`${check}: ${seededChecks.has(check) ? 'fail' : 'pass'}`);
});

test('with hostile strings in names, all violations are still found exactly and each string reaches a finding verbatim', async () => {
  const { report, manifest, markers } = await audit('hostile', 13, 'all', { hostile: true });
  const c = compareWithManifest(report, manifest);
  expect({ missed: c.missed, extra: c.extra }).toEqual({ missed: [], extra: [] });
  expect(evaluatedErrors(report)).toEqual([]);
  expect(markers).toHaveLength(5);
  const texts = report.results.flatMap((r) => r.findings.map((f) => `${f.resource}\n${f.message}`));
  for (const m of markers) {
    expect(m).toMatch(/window\.__pwned=\d/);
    expect(texts.some((t) => t.includes(m) || t.includes(JSON.stringify(m).slice(1, -1)))).toBe(true);
  }
});
