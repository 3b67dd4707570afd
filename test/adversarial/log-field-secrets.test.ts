/**
 * Issue 9, case 3: a secret in a log field reached every report. signing-key-source quoted
 * the `source` field (24 of INTERNAL_SECRET's 28 characters), and secrets the run never
 * read itself (a bearer token, a JWT, an `acp_` key, a Vault token) went wherever a check
 * quoted log text. Here they are planted in the fields checks read — `source`, `instance`,
 * the auth failure `client` — and searched for, 8 characters at a time, in stdout, stderr,
 * every report format, history, state, log lines and the daemon's /metrics, /report and
 * /report.json, in `run` and in `daemon` mode.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canaryToken, fetchText, findLeaks, fork, listenAddress, readAll, requireBuild, runCli, shapedCanaries, waitFor, type Forked } from './helpers';

const INTERNAL_SECRET = canaryToken('log-field-internal', 28);
const c = shapedCanaries('log-field');
const SECRETS = { INTERNAL_SECRET, ...c };

let dir: string;
const outputs = new Map<string, string>();
const running: Forked[] = [];

function config(outDir: string): string {
  return [
    'deployment: adversarial-log-fields',
    'services: [gateway, identity, audit]',
    'sources:',
    '  logs: { files: { audit: "logs/audit.jsonl", gateway: "logs/gateway.jsonl" }, window: 7d }',
    '  secrets: { env_files: { gateway: env/gateway.env, identity: env/identity.env } }',
    'state: { dir: state }',
    `outputs: { dir: ${JSON.stringify(outDir)} }`,
    'checks:',
    '  signing-key-source: { enabled: true }',
    '  internal-secret-drift: { enabled: true }',
    '  auth-failure-spike: { enabled: true, options: { services: [gateway] } }',
  ].join('\n');
}

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'adv-log-fields-'));
  mkdirSync(join(dir, 'logs'));
  mkdirSync(join(dir, 'env'));
  const ts = new Date(Date.now() - 60_000).toISOString();
  const load = (instance: string, key: string, source: string) => JSON.stringify({ ts, service: 'audit', instance, event: 'signing_key_loaded', key, source });
  writeFileSync(
    join(dir, 'logs', 'audit.jsonl'),
    [
      // The reported leak: INTERNAL_SECRET in `source`.
      load('audit-1', 'receipt', INTERNAL_SECRET),
      load('audit-1', 'root', 'env'),
      // Secrets nobody reads: a bearer token and a PEM block as sources, a JWT, an acp_ key and
      // a random token as instance names.
      load('audit-2', 'receipt', c.bearer),
      load('audit-2', 'root', c.pem),
      load(`audit-3 ${c.jwt}`, 'receipt', 'file'),
      load(`audit-3 ${c.jwt}`, 'root', 'env'),
      load(c.apiKey, 'receipt', 'generated'),
      load(c.random, 'receipt', 'file'),
    ].join('\n') + '\n',
  );
  const now = Date.now();
  const failures: string[] = [];
  for (let i = 0; i < 80; i++) {
    const client = [c.vault, c.aws, `10.0.0.${i % 3}`][i % 3];
    failures.push(JSON.stringify({ ts: new Date(now - 60_000 - i * 1000).toISOString(), service: 'gateway', event: 'auth_failure', reason: 'invalid_token', client }));
  }
  writeFileSync(join(dir, 'logs', 'gateway.jsonl'), failures.join('\n') + '\n');
  writeFileSync(join(dir, 'env', 'gateway.env'), `INTERNAL_SECRET=${INTERNAL_SECRET}\n`);
  writeFileSync(join(dir, 'env', 'identity.env'), `INTERNAL_SECRET=${INTERNAL_SECRET}\n`);
});

afterAll(() => {
  for (const f of running) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('run: no piece of a secret planted in log fields reaches any output', async () => {
  const cfg = join(dir, 'run.yaml');
  const out = join(dir, 'run-out');
  writeFileSync(cfg, config(out));
  const env = { AEGIS_AUDIT_LOG_LEVEL: 'debug' };
  const full = await runCli(['run', '--config', cfg], env);
  // Only the log check: INTERNAL_SECRET is never read by this run, so no known-value scrubbing can help.
  const alone = await runCli(['run', '--config', cfg, '--checks', 'signing-key-source'], env);
  expect(full.code).toBe(1);
  expect(alone.code).toBe(1);
  const seen = new Map<string, string>([
    ['stdout (all checks)', full.stdout],
    ['stderr (all checks)', full.stderr],
    ['stdout (signing-key-source)', alone.stdout],
    ['stderr (signing-key-source)', alone.stderr],
  ]);
  readAll([out, join(dir, 'state')], seen);
  for (const [k, v] of seen) outputs.set(k, v);
  expect([...seen.keys()].some((k) => k.endsWith('report.sarif'))).toBe(true);
  expect([...seen.keys()].some((k) => k.includes('/history/'))).toBe(true);

  // The findings are still there and say what was wrong, without the text.
  const report = JSON.parse(seen.get(join(out, 'report.json')) as string) as { results: { check: string; findings: { message: string }[] }[] };
  const messages = report.results.find((r) => r.check === 'signing-key-source')?.findings.map((f) => f.message) ?? [];
  expect(findLeaks(SECRETS, seen)).toEqual([]);
  expect(messages.filter((m) => m.includes('unrecognised source (unrecognised value, 28 characters)'))).toHaveLength(1);
  expect(messages.some((m) => m.includes('PEM file fallback') && m.includes('audit-3'))).toBe(true);
}, 180_000);

test('daemon: no piece of a planted secret in /metrics, /report, /report.json, report files or log lines', async () => {
  const cfg = join(dir, 'daemon.yaml');
  const out = join(dir, 'daemon-out');
  writeFileSync(cfg, config(out));
  const d = fork(['daemon', '--config', cfg, '--listen', '127.0.0.1:0'], { AEGIS_AUDIT_LOG_LEVEL: 'debug' });
  running.push(d);
  const base = await waitFor('the daemon to listen', () => listenAddress(d.stdout()));
  const reportJson = await waitFor('the first cycle', async () => {
    const r = await fetchText(`${base}/report.json`);
    return r.status === 200 && (JSON.parse(r.body) as { results: { check: string }[] }).results.some((x) => x.check === 'signing-key-source') ? r.body : undefined;
  });
  await waitFor('the report files', async () => ((await fetchText(`${base}/report`)).body.includes('<html') ? true : undefined));
  const seen = new Map<string, string>([
    ['/report.json', reportJson],
    ['/report', (await fetchText(`${base}/report`)).body],
    ['/metrics', (await fetchText(`${base}/metrics`)).body],
  ]);
  d.child.kill('SIGTERM');
  expect((await d.exited).code).toBe(0);
  seen.set('daemon stdout', d.stdout());
  seen.set('daemon stderr', d.stderr());
  readAll([out], seen);
  expect(findLeaks(SECRETS, seen)).toEqual([]);
  expect(seen.get('/report.json')).toContain('unrecognised value, 28 characters');
}, 180_000);
