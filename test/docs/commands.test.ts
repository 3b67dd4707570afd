/**
 * Docs that run: every `aegis-audit …` (or `npx aegis-audit …`) line in a fenced shell block of
 * README.md or docs/ is run as written, by bash, against the demo deployment (a sandbox with the
 * demo's default violations, built once for this file; its audit.yaml in the command's folder),
 * and must end as the line says: a trailing `# exit N` comment, else 0. Long-running commands
 * (`daemon`, `demo --daemon`) must come up, answer /healthz (and, once ready, every path their
 * comment names) and stop with exit 0 on SIGTERM (SIGINT for `demo --daemon`, "until Ctrl-C");
 * their listen address is replaced by a free port.
 *
 * Commands in inline code must name subcommands and options that exist; the complete ones (no
 * placeholder such as `<check id>` or `FILE`) are run too and must exit 0 or 1 (not a usage,
 * config or source error).
 *
 * A fenced line that cannot run on a test machine (it needs a Docker engine, a Kubernetes cluster
 * or a real deployment) is marked so at its end (`# needs a Docker engine`); such lines are not
 * run, they are counted, and the list of them is kept here explicitly (NOT_RUN) so a new one is a
 * decision, not a silent skip. A fenced line that starts aegis-audit some other way (a container)
 * and is not marked fails the test.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Command, Option } from 'commander';
import { registry } from '../../checks';
import { buildProgram } from '../../src/cli';
import { startDemo, type DemoResult } from '../../src/app/demo';
import { mapConfigPaths } from '../../src/config/paths';
import { adminUrl } from '../helpers/pg';
import { USER_FACING, violations, type Rule } from '../helpers/citations';
import { expectFreshBuild } from '../helpers/build';

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'aegis-audit.js');
/** The fenced lines the docs mark as not runnable here: keep this list tiny, and equal to what the docs mark. */
const NOT_RUN: readonly string[] = [
  'docker build -t aegis-audit:0.1.0 .                       # needs a Docker engine',
  'docker run --rm -p 9464:9464 -v $PWD/audit.yaml:/etc/aegis-audit/audit.yaml:ro aegis-audit:0.1.0   # needs a Docker engine',
];
const NOT_RUN_MARK = /#\s*needs (a Docker engine|a Kubernetes cluster|a real deployment)\s*$/;
/** Starts the auditor without its CLI on PATH: must be marked when it cannot run here. */
const OTHER_LAUNCH = /\b(docker|podman|kubectl|helm)\b.*\baegis-audit\b/;

interface DocCommand {
  file: string;
  line: number;
  text: string;
  /** The exit codes the docs allow: `# exit N` on a fenced line (else 0); 0 or 1 inline. */
  expected: readonly number[];
  longRunning: boolean;
}

function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : []));
  return [join(ROOT, 'README.md'), ...walk(join(ROOT, 'docs'))];
}

const SHELL_FENCE = /^(sh|bash|shell|console|)$/;
const COMMAND = /(^|[\s(<$])(npx\s+)?aegis-audit\s/;

const LONG_RUNNING = (words: string) => /aegis-audit\s+daemon\b/.test(words) || /aegis-audit\s+demo\b.*--daemon\b/.test(words);

/** Fenced shell lines that run aegis-audit, with what the docs say they exit with. */
function fencedCommands(): { run: DocCommand[]; marked: string[]; unmarked: string[] } {
  const run: DocCommand[] = [];
  const marked: string[] = [];
  const unmarked: string[] = [];
  for (const file of markdownFiles()) {
    const lines = readFileSync(file, 'utf8').split('\n');
    let fence: string | undefined;
    lines.forEach((raw, i) => {
      const f = /^```\s*([A-Za-z]*)\s*$/.exec(raw);
      if (f) {
        fence = fence === undefined ? f[1] : undefined;
        return;
      }
      if (fence === undefined || !SHELL_FENCE.test(fence)) return;
      const text = raw.replace(/^\s*\$\s+/, '').trim();
      if (text.startsWith('#')) return;
      if (NOT_RUN_MARK.test(text)) {
        marked.push(text);
        return;
      }
      if (!COMMAND.test(text)) {
        if (OTHER_LAUNCH.test(text.replace(/#.*$/, ''))) unmarked.push(`${relative(ROOT, file)}:${i + 1}: ${text}`);
        return;
      }
      const exit = /#\s*exit (\d)\b/.exec(text);
      const words = text.replace(/#.*$/, '');
      run.push({
        file: relative(ROOT, file),
        line: i + 1,
        text,
        expected: [exit ? Number(exit[1]) : 0],
        longRunning: LONG_RUNNING(words),
      });
    });
  }
  return { run, marked, unmarked };
}

/** `aegis-audit …` in inline code: every subcommand and option must exist. */
function inlineCommands(): { file: string; line: number; where: string; text: string }[] {
  const out: { file: string; line: number; where: string; text: string }[] = [];
  for (const file of markdownFiles()) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const m of line.matchAll(/`((?:npx )?aegis-audit [^`]+)`/g)) out.push({ file: relative(ROOT, file), line: i + 1, where: `${relative(ROOT, file)}:${i + 1}`, text: m[1] });
      });
  }
  return out;
}

/** A command as a user would compare two of them: no npx, no comment, single spaces. */
const normal = (text: string) => text.replace(/#.*$/, '').replace(/^npx\s+/, '').replace(/\s+/g, ' ').trim();
const withoutListen = (text: string) => normal(text).replace(/ --listen \S+/, '');
/** `<check id>`, `FILE`, `…`: a template for the reader to fill in, not a command to run. */
const PLACEHOLDER = /<[^>]*>|\b[A-Z]{3,}\b|…|\.\.\./;

/**
 * The inline commands to run besides the fenced ones: complete, and not the same as a fenced
 * line. A long-running one is not started again but must match a fenced one (but for --listen).
 */
function inlineToRun(fenced: readonly DocCommand[]): { run: DocCommand[]; uncovered: string[] } {
  const seen = new Set(fenced.map((c) => normal(c.text)));
  const served = new Set(fenced.filter((c) => c.longRunning).map((c) => withoutListen(c.text)));
  const run: DocCommand[] = [];
  const uncovered: string[] = [];
  for (const c of inlineCommands()) {
    if (PLACEHOLDER.test(c.text) || seen.has(normal(c.text))) continue;
    seen.add(normal(c.text));
    if (LONG_RUNNING(normal(c.text))) {
      if (!served.has(withoutListen(c.text))) uncovered.push(`${c.where}: \`${c.text}\` runs until stopped: put it in a fenced block so the docs test starts it`);
      continue;
    }
    run.push({ file: c.file, line: c.line, text: c.text, expected: [0, 1], longRunning: false });
  }
  return { run, uncovered };
}

/** What is wrong with a command line for this CLI (unknown subcommand or option), if anything. */
function cliProblems(program: Command, text: string): string[] {
  const words = text.replace(/#.*$/, '').replace(/^npx\s+/, '').trim().split(/\s+/).slice(1);
  let cmd = program;
  const problems: string[] = [];
  let i = 0;
  for (; i < words.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]));
    if (!sub) break;
    cmd = sub;
  }
  if (cmd === program && words.length > 0 && !words[0].startsWith('-')) problems.push(`no command "${words[0]}"`);
  const known = new Set(['--help', '-h', ...(cmd === program ? ['--version', '-V'] : []), ...(cmd.options as readonly Option[]).flatMap((o) => [o.long, o.short].filter((x): x is string => !!x))]);
  for (; i < words.length; i++) {
    const w = words[i];
    if (!w.startsWith('-') || w === '-') continue;
    const flag = w.split('=')[0];
    if (!known.has(flag)) problems.push(`"${cmd.name()}" has no option ${flag} (it has ${[...known].filter((k) => k.startsWith('--')).join(', ')})`);
  }
  const given = new Set(words.map((w) => w.split('=')[0]));
  if (!given.has('--help') && !given.has('-h')) {
    for (const o of cmd.options as readonly Option[]) if (o.mandatory && !given.has(o.long ?? '') && !given.has(o.short ?? '')) problems.push(`"${cmd.name()}" needs ${o.long}`);
  }
  return problems;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function get(url: string): Promise<number> {
  return new Promise((res) => {
    const req = request(url, { timeout: 10_000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('error', () => res(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

let work: string;
let shim: string;
let demo: DemoResult;
/** The demo's audit.yaml with absolute paths and a free listen address, placed in each command's folder. */
let demoConfig: string;
let listenPort: number;

beforeAll(async () => {
  expectFreshBuild();
  work = mkdtempSync(join(tmpdir(), 'docs-commands-'));
  // `aegis-audit` and `npx aegis-audit` on PATH run this checkout's CLI, as an installed package would.
  shim = join(work, 'bin');
  mkdirSync(shim);
  writeFileSync(join(shim, 'aegis-audit'), `#!/bin/sh\nexec node ${JSON.stringify(BIN)} "$@"\n`);
  writeFileSync(join(shim, 'npx'), '#!/bin/sh\n[ "$1" = aegis-audit ] || { echo "docs test: npx only runs aegis-audit here" >&2; exit 127; }\nshift\nexec aegis-audit "$@"\n');
  chmodSync(join(shim, 'aegis-audit'), 0o755);
  chmodSync(join(shim, 'npx'), 0o755);
  // The demo deployment, up for the whole file: what the README's commands run against.
  demo = await startDemo(registry, { out: join(work, 'demo'), rows: 300, violations: 'default', adminUrl: adminUrl() });
  listenPort = await freePort();
  const absolute = parse(readFileSync(demo.configPath, 'utf8')) as Record<string, unknown>;
  mapConfigPaths(absolute, (p) => resolve(join(work, 'demo'), p));
  absolute.server = { listen: `127.0.0.1:${listenPort}` };
  demoConfig = join(work, 'audit.yaml');
  writeFileSync(demoConfig, stringify(absolute));
  writeFileSync(join(work, 'waivers.yaml'), 'waivers: []\n');
  writeFileSync(join(work, 'attestations.yaml'), 'attestations: []\n');
}, 300_000);

afterAll(async () => {
  await demo?.sandbox.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const { run: fenced, marked, unmarked } = fencedCommands();
const { run: inline, uncovered } = inlineToRun(fenced);
const commands = [...fenced, ...inline];

test(`the docs' commands are all run or marked: ${fenced.length} fenced and ${inline.length} inline run here, ${marked.length} marked as needing what a test machine lacks`, () => {
  expect(fenced.length).toBeGreaterThanOrEqual(10);
  expect(fenced.some((c) => c.expected.includes(1))).toBe(true);
  expect(fenced.some((c) => c.longRunning)).toBe(true);
  // Exactly the lines listed above are not run: a newly marked line must be added there, on purpose.
  expect(marked).toEqual(NOT_RUN);
  expect(unmarked).toEqual([]);
  expect(uncovered).toEqual([]);
});

test('the detectors see what they must: containers, placeholders, long-running inline commands', () => {
  expect(OTHER_LAUNCH.test('docker run --rm aegis-audit:0.1.0')).toBe(true);
  expect(NOT_RUN_MARK.test('docker run --rm aegis-audit:0.1.0   # needs a Docker engine')).toBe(true);
  expect(NOT_RUN_MARK.test('npx aegis-audit run --config audit.yaml   # needs nothing')).toBe(false);
  expect(PLACEHOLDER.test('aegis-audit explain <check id>')).toBe(true);
  expect(PLACEHOLDER.test('aegis-audit config validate FILE')).toBe(true);
  expect(PLACEHOLDER.test('aegis-audit run --config audit.yaml --checks receipt-chain')).toBe(false);
  expect(outputProblems(mkdtempSync(join(tmpdir(), 'docs-scan-')), 'see seed 004 in ../shared/runbooks/secret-management.md').length).toBeGreaterThanOrEqual(3);
  expect(outputProblems(mkdtempSync(join(tmpdir(), 'docs-scan-')), 'runbook: ../../work/wt/x/docs/runbooks/receipt-chain.md')).toEqual([]);
  expect(withoutListen('npx aegis-audit demo --daemon --listen 127.0.0.1:9464 # until Ctrl-C')).toBe('aegis-audit demo --daemon');
});

test('every aegis-audit command in the docs names subcommands and options that exist', () => {
  const program = buildProgram({ out: () => undefined, err: () => undefined }, () => undefined);
  const all = [...inlineCommands(), ...fenced.map((c) => ({ where: `${c.file}:${c.line}`, text: c.text.replace(/^.*?((?:npx\s+)?aegis-audit\s)/, '$1') }))];
  expect(all.length).toBeGreaterThan(fenced.length);
  const problems = all.flatMap(({ where, text }) => cliProblems(program, text).map((p) => `${where}: \`${text}\`: ${p}`));
  expect(problems).toEqual([]);
  // The detector catches what users hit.
  expect(cliProblems(program, 'aegis-audit run --only receipt-chain')).toEqual([expect.stringContaining('"run" has no option --only'), '"run" needs --config']);
  expect(cliProblems(program, 'aegis-audit run --full')).toEqual(['"run" needs --config']);
});

/** A fresh folder per command with the files it names (so `init` finds an empty folder). */
function folderFor(c: DocCommand): string {
  const dir = mkdtempSync(join(work, 'cmd-'));
  for (const f of ['audit.yaml', 'waivers.yaml', 'attestations.yaml']) if (c.text.includes(f)) copyFileSync(join(work, f), join(dir, f));
  return dir;
}

function spawnShell(dir: string, text: string) {
  return spawn('bash', ['-c', text], {
    cwd: dir,
    env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ''}`, AEGIS_AUDIT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/**
 * What a command prints and writes is user-facing text too: no internal runbook number, runbook
 * file name or internal file. (This checkout may itself live under /work, so report links to
 * the runbooks shipped here may pass through it; only the folder outside the repository is named.)
 */
const OUTPUT_RULES: Rule[] = [...USER_FACING.filter((r) => !r.re.test('/work/')), { re: /\/work\/shared\b/, what: 'a path outside the repository' }];
const TEXT_OUTPUT = /\.(html|json|xml|sarif|md|ya?ml|txt|counts)$/;

function outputProblems(dir: string, printed: string): string[] {
  const files = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : TEXT_OUTPUT.test(e.name) ? [join(d, e.name)] : []));
  const found = violations(printed, 'output', OUTPUT_RULES);
  for (const f of files(dir)) if (statSync(f).size < 20_000_000) found.push(...violations(readFileSync(f, 'utf8'), relative(dir, f), OUTPUT_RULES));
  return found;
}

/** The paths a long-running command's comment names (`# /metrics /healthz …`). */
const namedPaths = (text: string): string[] => [...(/#(.*)$/.exec(text)?.[1] ?? '').matchAll(/(?:^|\s)(\/[a-z][a-z.]*)/g)].map((m) => m[1]);

describe.each(commands.map((c) => [`${c.file}:${c.line} ${c.text}`, c] as const))('%s', (_name, c) => {
  test(`runs as written and ${c.longRunning ? 'serves until stopped' : `exits ${c.expected.join(' or ')}`}`, async () => {
    const dir = folderFor(c);
    // A long-running command gets a free port instead of the documented one.
    const port = c.longRunning ? await freePort() : 0;
    const text = c.longRunning ? c.text.replace(/(--listen\s+)\S+/, `$1127.0.0.1:${port}`) : c.text;
    const child = spawnShell(dir, text);
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number>((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 128 : -1))));
    if (!c.longRunning) {
      const code = await exited;
      const ok = c.expected.includes(code);
      expect({ command: c.text, code: ok ? c.expected[0] : code, stderr: ok ? '' : err.slice(-2000) }).toEqual({ command: c.text, code: c.expected[0], stderr: '' });
      expect(outputProblems(dir, out + err)).toEqual([]);
      return;
    }
    // Up: it says where it listens, /healthz answers, and once ready so does every path its comment names.
    const started = Date.now();
    let address: string | undefined;
    while (!address && Date.now() - started < 600_000) {
      address = /listening on (http:\/\/[^\s)]+)/.exec(out)?.[1];
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    try {
      expect({ command: c.text, address: address !== undefined, stderr: address ? '' : err.slice(-2000) }).toEqual({ command: c.text, address: true, stderr: '' });
      expect(await get(`${address}/healthz`)).toBe(200);
      const paths = namedPaths(c.text);
      if (paths.includes('/readyz')) {
        let ready = 0;
        for (const t0 = Date.now(); ready !== 200 && Date.now() - t0 < 300_000; ) {
          ready = await get(`${address}/readyz`);
          if (ready !== 200) await new Promise((r) => setTimeout(r, 500));
        }
      }
      const answers = await Promise.all(paths.map(async (p) => [p, await get(`${address}${p}`)] as const));
      expect(answers.filter(([, s]) => s !== 200)).toEqual([]);
    } finally {
      if (child.exitCode === null && child.pid) process.kill(-child.pid, /--daemon\b/.test(c.text) ? 'SIGINT' : 'SIGTERM');
    }
    const code = await exited;
    expect({ command: c.text, code, stderr: code === 0 ? '' : err.slice(-2000) }).toEqual({ command: c.text, code: 0, stderr: '' });
    expect(outputProblems(dir, out + err)).toEqual([]);
  }, 900_000);
});
