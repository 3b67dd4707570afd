import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig, parseConfig } from '../../src/config/load';
import { buildRegistry } from '../../src/core/registry';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { AuditError } from '../../src/core/errors';
import { main } from '../../src/cli';

const registry = buildRegistry([
  defineCheck({
    meta: {
      id: 'demo-check', title: 'The demo condition holds', description: 'For config tests.', severity: 'low',
      sources: [], schedule: '*/5 * * * *', checklist: [], runbook: 'docs/runbooks/demo-check.md', remediation: 'Do the thing.',
    },
    messages: { m: 'x' },
    options: z.object({ window: z.number().int().positive().default(5) }),
    run: async () => undefined,
  }) as unknown as AnyCheck,
]);

function errorOf(fn: () => unknown): AuditError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AuditError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

test('defaults follow DESIGN.md', () => {
  const { config } = parseConfig('deployment: prod\n', '/etc/a/audit.yaml');
  expect(config.services).toEqual(['identity', 'gateway', 'api', 'audit', 'insight']);
  expect(config.run).toEqual({ concurrency: 4, timeout: 120000, fail_on: 'low' });
});

test('${VAR} and ${VAR:-default} come from the environment; a missing one names the path and line', () => {
  const text = 'deployment: prod\nsources:\n  postgres:\n    url: "${DB_URL}"\n    schema: "${SCHEMA:-audit}"\n';
  const { config } = parseConfig(text, 'audit.yaml', { env: { DB_URL: 'postgres://x/y' } });
  expect(config.sources.postgres?.url).toBe('postgres://x/y');
  expect(config.sources.postgres?.schema).toBe('audit');
  const e = errorOf(() => parseConfig(text, 'audit.yaml', { env: {} }));
  expect(e.message).toContain('audit.yaml:4:10: sources.postgres.url: environment variable DB_URL is not set');
});

test('a ${...} form the loader does not support is an error, not a literal value', () => {
  const text = 'deployment: prod\nsources:\n  postgres:\n    url: "${DB_URL-postgres://x/y}"\n    schema: "${ SCHEMA }"\n';
  const e = errorOf(() => parseConfig(text, 'audit.yaml', { env: { DB_URL: 'postgres://a/b', SCHEMA: 's' } }));
  expect(e.message).toContain('audit.yaml:4:10: sources.postgres.url: unsupported reference "${DB_URL-postgres://x/y}" (use ${VAR} or ${VAR:-default})');
  expect(e.message).toContain('audit.yaml:5:13: sources.postgres.schema: unsupported reference "${ SCHEMA }"');
  // A value taken from the environment is used as it is, even when it contains "${".
  const { config } = parseConfig('deployment: prod\nsources:\n  postgres:\n    url: "${DB_URL}"\n', 'audit.yaml', { env: { DB_URL: 'postgres://a/b?x=${y}' } });
  expect(config.sources.postgres?.url).toBe('postgres://a/b?x=${y}');
});

test('every error names file, line, path and what was expected', () => {
  const e = errorOf(() =>
    parseConfig('deployment: prod\nsources:\n  logs: { files: { audit: "a/*.jsonl" }, window: soon }\nrun:\n  concurrency: many\n  extra: 1\n', 'cfg.yaml'),
  );
  expect(e.code).toBe('AUDIT_ERR_CONFIG');
  expect(e.message).toContain('cfg.yaml:3:50: sources.logs.window: invalid duration "soon"');
  expect(e.message).toContain('cfg.yaml:5:16: run.concurrency: expected number, got string');
  expect(e.message).toContain('cfg.yaml:6:10: run: unknown key "extra"');
});

test('malformed YAML is a config error with a position', () => {
  expect(errorOf(() => parseConfig('deployment: [prod\n', 'x.yaml')).message).toMatch(/^x\.yaml:\d+:\d+: invalid YAML/);
  expect(errorOf(() => parseConfig('- a\n- b\n', 'x.yaml')).message).toContain('expected a mapping at the top level');
});

test('unknown check ids and bad check options are errors naming the check', () => {
  expect(errorOf(() => parseConfig('deployment: p\nchecks:\n  nope: {}\n', 'c.yaml', { registry })).message).toContain(
    'checks.nope: unknown check id (known: demo-check)',
  );
  expect(errorOf(() => parseConfig('deployment: p\nchecks:\n  demo-check: { options: { window: -1 } }\n', 'c.yaml', { registry })).message).toMatch(
    /c\.yaml:3:\d+: checks\.demo-check\.options\.window: /,
  );
  const ok = parseConfig('deployment: p\nchecks:\n  demo-check: { options: { window: 7 } }\n', 'c.yaml', { registry });
  expect(ok.checkOptions.get('demo-check')).toEqual({ window: 7 });
});

test('relative paths resolve against the config file folder', () => {
  const { config } = parseConfig(
    'deployment: p\nsources:\n  logs: { files: { audit: "logs/*.jsonl" } }\n  secrets: { env_files: { audit: env/audit.env }, pem_files: { receipt: /abs/r.pem } }\n',
    '/srv/aegis/audit.yaml',
  );
  expect(config.sources.logs?.files?.audit).toBe('/srv/aegis/logs/*.jsonl');
  expect(config.sources.secrets?.env_files?.audit).toBe('/srv/aegis/env/audit.env');
  expect(config.sources.secrets?.pem_files?.receipt).toBe('/abs/r.pem');
});

test('an unreadable file is a config error', () => {
  expect(errorOf(() => loadConfig('/nonexistent/audit.yaml')).message).toContain('/nonexistent/audit.yaml: cannot read config file (ENOENT)');
});

test('`config validate` exits 2 without a stack trace on a bad file, 0 on a good one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'bad.yaml'), 'deployment: prod\nrun: { timeout: forever }\n');
  writeFileSync(join(dir, 'good.yaml'), 'deployment: prod\n');
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
  expect(await main(['node', 'aegis-audit', 'config', 'validate', join(dir, 'bad.yaml')], io)).toBe(2);
  expect(err.join('')).toContain('run.timeout: invalid duration "forever"');
  expect(err.join('')).not.toMatch(/\n\s+at /);
  expect(await main(['node', 'aegis-audit', 'config', 'validate', join(dir, 'good.yaml')], io)).toBe(0);
  expect(out.join('')).toContain('valid');
  expect(await main(['node', 'aegis-audit', 'run', '--config', join(dir, 'bad.yaml')], io)).toBe(2);
  expect(await main(['node', 'aegis-audit', 'frobnicate'], io)).toBe(2);
});

test('sources.endpoints: files resolve against the config folder; a bad target names its path', () => {
  const ok = parseConfig(
    'deployment: p\nsources:\n  endpoints:\n    ca_file: certs/ca.pem\n    client_cert_file: certs/a.crt\n    client_key_file: certs/a.key\n    targets:\n      api: { url: "https://api.internal:8443/v1/predict", probes: [mtls] }\n',
    '/etc/aegis/audit.yaml',
  ).config.sources.endpoints;
  expect(ok).toMatchObject({ ca_file: '/etc/aegis/certs/ca.pem', client_key_file: '/etc/aegis/certs/a.key', timeout: 5000, targets: { api: { probes: ['mtls'], identity_header: 'x-ssl-client-cn' } } });
  const bad = errorOf(() =>
    parseConfig(
      'deployment: p\nsources:\n  endpoints:\n    client_cert_file: a.crt\n    targets:\n      api: { url: "http://api.internal/v1?token=x", probes: [] }\n      gw: { url: "https://gw/", probes: [tls] }\n',
      'e.yaml',
    ),
  ).message;
  expect(bad).toMatch(/e\.yaml:6:\d+: sources\.endpoints\.targets\.api\.url: .*an https:\/\/ URL without credentials, query or fragment/);
  expect(bad).toMatch(/sources\.endpoints\.targets\.api\.probes: /);
  expect(bad).toMatch(/sources\.endpoints\.targets\.gw\.probes\[0\]: /);
});
