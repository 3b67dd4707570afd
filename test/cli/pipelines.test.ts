/**
 * The CLI in a pipeline, as a forked process: `--out -` / `--json` put the JSON report alone on
 * stdout (logs and the summary go to stderr, no file is written); `checklist` takes the same
 * --checks / --format / --fail-on as `run`; `explain`, `init` and `completion` work as a user
 * would call them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { registry } from '../../checks';
import { buildSandbox } from '../../src/sandbox/build';
import type { Report } from '../../src/core/types';
import { adminUrl } from '../helpers/pg';
import { expectFreshBuild } from '../helpers/build';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  try {
    const r = await promisify(execFile)('node', [CLI, ...args], { cwd: opts.cwd, env: opts.env ?? { ...process.env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout: string; stderr: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout, stderr: x.stderr };
  }
}

beforeAll(() => {
  expectFreshBuild();
});

/** A deployment with only log files: signing-key-source is evaluated, the other checks are skipped. */
function logsOnly(source: 'env' | 'file'): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-'));
  const ts = new Date(Date.now() - 60_000).toISOString();
  const line = (key: string) => JSON.stringify({ ts, service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key, source });
  writeFileSync(join(dir, 'audit.jsonl'), `${line('receipt')}\n${line('root')}\n`);
  // Checkpoints (latest starts seen) live beside the config, so the folder the CLI runs in only
  // gets what the command itself writes.
  writeFileSync(join(dir, 'audit.yaml'), 'deployment: pipe\nsources:\n  logs: { files: { audit: audit.jsonl } }\nstate: { dir: state }\n');
  return { dir, config: join(dir, 'audit.yaml') };
}

jest.setTimeout(300_000); // every test forks the CLI, several times; the machine is shared

describe('--out - and --json', () => {
  test('against a whole sandbox at debug log level, stdout is exactly the JSON report; logs and summary are on stderr; no file is written', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pipe-sandbox-'));
    const sandbox = await buildSandbox({ dir: join(root, 'sandbox'), seed: 8, rows: 240, violations: ['api-key-old'], adminUrl: adminUrl() });
    try {
      const r = await cli(['run', '--config', sandbox.configPath, '--out', '-'], { cwd: root, env: { ...process.env, AEGIS_AUDIT_LOG_LEVEL: 'debug' } });
      expect(r.code).toBe(1);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.schemaVersion).toBe(1);
      expect(report.results.map((x) => x.check).sort()).toEqual([...registry.keys()].sort());
      expect(report.results.find((x) => x.check === 'credential-age')?.status).toBe('fail');
      expect(r.stderr).toContain('"level":20'); // debug lines went to stderr
      expect(r.stderr).toContain('[medium] credential-age api_key='); // the summary went to stderr
      expect(readdirSync(root).sort()).toEqual(['sandbox']); // no "-" folder, no reports/
    } finally {
      await sandbox.stop();
    }
  }, 120_000);

  test('--json is the same; the exit code still follows --fail-on', async () => {
    const { config } = logsOnly('file');
    const dir = mkdtempSync(join(tmpdir(), 'pipe-cwd-'));
    const high = await cli(['run', '--config', config, '--json', '--fail-on', 'high'], { cwd: dir });
    expect(high.code).toBe(1);
    const report = JSON.parse(high.stdout) as Report;
    expect(report.results.find((x) => x.check === 'signing-key-source')?.findings.map((f) => f.resource)).toEqual(['instance=audit-1,key=receipt', 'instance=audit-1,key=root']);
    expect(high.stderr).toContain('[high] signing-key-source instance=audit-1,key=receipt');
    const critical = await cli(['run', '--config', config, '--json', '--fail-on', 'critical'], { cwd: dir });
    expect(critical.code).toBe(0);
    expect(readdirSync(dir)).toEqual([]); // no report, no "-" folder
  });

  test('asking for another format on stdout is a usage error (exit 2)', async () => {
    const { dir, config } = logsOnly('env');
    const r = await cli(['run', '--config', config, '--out', '-', '--format', 'json,html'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('writes only the JSON report; write html to a directory with --out <dir>');
  });
});

test('checklist takes --checks, --format and --fail-on like run', async () => {
  const { dir, config } = logsOnly('file');
  const out = join(dir, 'out');
  const r = await cli(['checklist', '--config', config, '--out', out, '--checks', 'signing-key-source', '--format', 'checklist', '--fail-on', 'critical']);
  expect(r.code).toBe(0);
  expect(readdirSync(out).filter((f) => !f.startsWith('history'))).toEqual(['checklist.html']);
  const html = readFileSync(join(out, 'checklist.html'), 'utf8');
  expect(html).toMatch(/id="item-class1-secrets-from-env"[\s\S]*?FAIL/);
  const failing = await cli(['checklist', '--config', config, '--out', out, '--checks', 'signing-key-source', '--fail-on', 'high']);
  expect(failing.code).toBe(1);
  expect(failing.stdout).toContain(`checklist: ${join(out, 'checklist.html')}`);
  const json = await cli(['checklist', '--config', config, '--json', '--checks', 'signing-key-source']);
  expect((JSON.parse(json.stdout) as Report).results.map((x) => x.check)).toEqual(['signing-key-source']);
  expect((await cli(['checklist', '--config', config, '--checks', 'no-such-check'])).code).toBe(2);
});

test('explain prints what the check proves, its options with defaults, sources, findings, remediation and runbook', async () => {
  const r = await cli(['explain', 'credential-age']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^credential-age — API keys and rotated secrets are younger than their rotation policy\n/);
  expect(r.stdout).toContain('sources    postgres');
  expect(r.stdout).toMatch(/apiKeyMaxAge\s+duration\s+default 90d/);
  expect(r.stdout).toMatch(/rotationPolicies\.<name>\s+duration\s+default \{ JWT_SECRET_KEY: 90d, INTERNAL_SECRET: 90d, receipt: 365d, root: 365d \}/);
  expect(r.stdout).toContain('apiKeyOld');
  expect(r.stdout).toContain('Remediation\n  Rotate the named credential');
  expect(r.stdout).toContain('Why it matters\n  *Runbook: Secrets & Identity for Aegis* §6');
  expect(r.stdout).toMatch(/Runbook {4}docs\/runbooks\/credential-age\.md \(\/.*docs\/runbooks\/credential-age\.md\)/);
  const bad = await cli(['explain', 'credential-ages']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('unknown check credential-ages (known: auth-failure-spike,');
});

describe('init', () => {
  test('writes a starter config for the sources it finds, as ${VAR} references, that validates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'));
    const root = join(dir, 'root');
    for (const d of ['var/log/aegis/audit', 'var/log/aegis/gateway', 'run/aegis', 'data/keys']) await import('node:fs').then((fs) => fs.mkdirSync(join(root, d), { recursive: true }));
    writeFileSync(join(root, 'run/aegis/audit.env'), 'INTERNAL_SECRET=x\n');
    writeFileSync(join(root, 'data/keys/receipt-signing.pem'), '');
    const secret = 'pw-canary-7f3a9c1e';
    const env = { ...process.env, AUDIT_DATABASE_URL: `postgres://audit:${secret}@db:5432/audit`, AWS_REGION: 'eu-west-1', VAULT_ADDR: 'https://vault:8200', VAULT_TOKEN: `s.${secret}`, PROMETHEUS_URL: 'http://prom:9090' };
    const r = await cli(['init', '--root', root, '--deployment', 'staging'], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('found: postgres (AUDIT_DATABASE_URL); AWS SSM and CloudWatch Logs (AWS_REGION); vault (VAULT_ADDR); prometheus (PROMETHEUS_URL); log files (audit, gateway); env files (audit); PEM key files');
    const text = readFileSync(join(dir, 'audit.yaml'), 'utf8');
    expect(text).not.toContain(secret);
    expect(text).toContain('url: "${AUDIT_DATABASE_URL}"');
    expect(text).toContain('token_env: VAULT_TOKEN');
    expect(text).toContain(`audit: "${join(root, 'var/log/aegis/audit/*.jsonl')}"`);
    const valid = await cli(['config', 'validate', 'audit.yaml'], { cwd: dir, env });
    expect(valid.code).toBe(0);
    expect(valid.stdout).toContain('valid (deployment staging, 4 source groups)');
    // It never overwrites without --force.
    const again = await cli(['init'], { cwd: dir, env });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('audit.yaml exists (use --force to overwrite it)');
    expect((await cli(['init', '--force', '--root', join(dir, 'empty')], { cwd: dir, env: { PATH: process.env.PATH } })).code).toBe(0);
    expect(readFileSync(join(dir, 'audit.yaml'), 'utf8')).toContain('sources: {}   # nothing found');
    expect((await cli(['config', 'validate', 'audit.yaml'], { cwd: dir, env: { PATH: process.env.PATH } })).code).toBe(0);
  });
});

describe('completion', () => {
  async function complete(script: string, line: string): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'compl-'));
    writeFileSync(join(dir, 'c.bash'), script);
    const body = `source ${join(dir, 'c.bash')}\nread -ra COMP_WORDS <<< ${JSON.stringify(line)}\n${line.endsWith(' ') ? 'COMP_WORDS+=("")\n' : ''}COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))\n_aegis_audit\nprintf '%s\\n' "\${COMPREPLY[@]}"\n`;
    const r = await promisify(execFile)('bash', ['-c', body]);
    return r.stdout.split('\n').filter(Boolean);
  }

  test('bash completes commands, subcommands, options, choices and check ids from the CLI itself', async () => {
    const r = await cli(['completion', 'bash']);
    expect(r.code).toBe(0);
    expect(await complete(r.stdout, 'aegis-audit ')).toEqual(expect.arrayContaining(['run', 'checklist', 'daemon', 'demo', 'explain', 'init', 'completion', 'checks', 'config', 'waivers']));
    expect(await complete(r.stdout, 'aegis-audit config ')).toEqual(['validate', 'reference']);
    expect(await complete(r.stdout, 'aegis-audit run --f')).toEqual(['--full', '--format', '--fail-on']);
    expect(await complete(r.stdout, 'aegis-audit checklist --fail-on h')).toEqual(['high']);
    expect(await complete(r.stdout, 'aegis-audit demo --format js')).toEqual(['json']);
    expect(await complete(r.stdout, 'aegis-audit explain receipt-')).toEqual(['receipt-chain']);
    expect(await complete(r.stdout, 'aegis-audit run --checks receipt-chain,signing-key-s')).toEqual(['receipt-chain,signing-key-source']);
    expect(await complete(r.stdout, 'aegis-audit run --config audit.yaml --')).toEqual(expect.arrayContaining(['--checks', '--out', '--json', '--format', '--fail-on', '--help']));
  });

  test('zsh loads the same function through bashcompinit; an unknown shell is a usage error', async () => {
    const bash = await cli(['completion', 'bash']);
    const zsh = await cli(['completion', 'zsh']);
    expect(zsh.stdout.startsWith('#compdef aegis-audit\n')).toBe(true);
    expect(zsh.stdout).toContain('bashcompinit');
    expect(zsh.stdout).toContain(bash.stdout.slice(bash.stdout.indexOf('_aegis_audit() {')));
    expect((await cli(['completion', 'fish'])).code).toBe(2);
  });
});
