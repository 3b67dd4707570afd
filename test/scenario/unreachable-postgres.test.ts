/**
 * An unreachable Postgres: every check that needs it is `error` with a message naming the
 * source and the fault (never `pass`), the other checks still run, and `run` exits 3.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli';
import { freePort } from '../../src/sandbox/embedded-postgres';
import type { Report } from '../../src/core/types';

test('checks on a dead Postgres error, others still run, exit 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dead-pg-'));
  try {
    const port = await freePort();
    mkdirSync(join(dir, 'env'));
    writeFileSync(join(dir, 'env', 'gateway.env'), 'INTERNAL_SECRET=one-shared-internal-secret\n');
    writeFileSync(join(dir, 'env', 'identity.env'), 'INTERNAL_SECRET=one-shared-internal-secret\n');
    writeFileSync(
      join(dir, 'audit.yaml'),
      [
        'deployment: dead-pg',
        'services: [gateway, identity]',
        'sources:',
        `  postgres: { url: "postgres://auditor:NotThisPassword42@127.0.0.1:${port}/audit", connect_timeout: 2s }`,
        '  secrets: { env_files: { gateway: env/gateway.env, identity: env/identity.env } }',
        'state: { dir: state }',
      ].join('\n'),
    );
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['node', 'aegis-audit', 'run', '--config', join(dir, 'audit.yaml'), '--out', join(dir, 'reports'), '--format', 'json'], {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
    });
    const report = JSON.parse(readFileSync(join(dir, 'reports', 'report.json'), 'utf8')) as Report;
    const status = Object.fromEntries(report.results.map((r) => [r.check, r.status]));
    expect(status).toMatchObject({
      'historical-keys': 'error',
      'receipt-chain': 'error',
      'credential-age': 'error',
      'signing-key-fingerprint': 'error',
      'internal-secret-drift': 'pass',
      'signing-key-source': 'skipped',
    });
    for (const r of report.results.filter((x) => ['historical-keys', 'receipt-chain', 'credential-age'].includes(x.check))) {
      expect(r.error).toMatch(/^postgres: .*connection refused/);
      expect(r.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    }
    expect(code).toBe(3);
    const all = out.join('') + err.join('') + JSON.stringify(report);
    expect(all).not.toContain('NotThisPassword42');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
