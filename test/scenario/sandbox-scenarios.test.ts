/**
 * The audit finds exactly what the sandbox seeded: each violation alone, random
 * combinations over several seeds, none and all — nothing missed, nothing extra.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { compareWithManifest } from '../../src/app/compare';
import { buildSandbox } from '../../src/sandbox/build';
import { VIOLATION_IDS, listViolations } from '../../src/sandbox/violations';
import type { Report } from '../../src/core/types';
import { adminUrl } from '../helpers/pg';

const root = mkdtempSync(join(tmpdir(), 'scenarios-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function audit(name: string, seed: number, violations: 'all' | 'none' | string[]) {
  const sandbox = await buildSandbox({ dir: join(root, name), seed, rows: 240, violations, adminUrl: adminUrl() });
  try {
    const report = await runAudit(loadConfig(sandbox.configPath, { registry }), registry);
    return { report, manifest: sandbox.manifest };
  } finally {
    await sandbox.stop();
  }
}

function evaluatedErrors(report: Report): string[] {
  return report.results.filter((r) => r.status === 'error').map((r) => `${r.check}: ${r.error}`);
}

test('with no violation seeded every evaluated check passes', async () => {
  const { report, manifest } = await audit('none', 11, 'none');
  expect(manifest.violations).toEqual([]);
  expect(evaluatedErrors(report)).toEqual([]);
  expect(report.results.filter((r) => r.status === 'fail').map((r) => r.check)).toEqual([]);
  expect(report.summary.pass).toBeGreaterThanOrEqual(6);
});

test.each([...VIOLATION_IDS])('violation %s alone is found exactly', async (id) => {
  const { report, manifest } = await audit(id, 3, [id]);
  expect(manifest.violations.length).toBeGreaterThan(0);
  const c = compareWithManifest(report, manifest);
  expect({ missed: c.missed, extra: c.extra }).toEqual({ missed: [], extra: [] });
  expect(evaluatedErrors(report)).toEqual([]);
});

test('every check of the slice can be made to fail by some violation', () => {
  const checks = new Set(listViolations().map((v) => v.check));
  for (const id of ['signing-key-source', 'signing-key-fingerprint', 'historical-keys', 'receipt-chain', 'internal-secret-drift', 'credential-age']) {
    expect(checks).toContain(id);
  }
});

/** A small deterministic PRNG so a failing combination can be replayed from its seed. */
function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
});
