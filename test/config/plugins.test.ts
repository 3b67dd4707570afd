/**
 * `plugins:` loads external checks with the built-ins' contract: validated on load (a broken
 * plugin is exit 2 naming the file and what is wrong), configurable under `checks:` like a
 * built-in (unknown options refused), and run, reported and exit-coded like one.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { main } from '../../src/cli';
import { AuditError } from '../../src/core/errors';
import type { Report } from '../../src/core/types';

const FIXTURE = resolve(__dirname, '..', 'fixtures', 'plugins', 'heartbeat');

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'plugins-'));
  cpSync(FIXTURE, join(dir, 'plugins', 'heartbeat'), { recursive: true });
  mkdirSync(join(dir, 'logs'));
  const recent = new Date(Date.now() - 60_000).toISOString();
  writeFileSync(join(dir, 'logs', 'audit.jsonl'), `${JSON.stringify({ ts: recent, service: 'audit', event: 'anything' })}\n`);
  writeFileSync(join(dir, 'logs', 'gateway.jsonl'), `${JSON.stringify({ ts: '2020-01-01T00:00:00.000Z', service: 'gateway', event: 'old' })}\n`);
  return dir;
}

function config(dir: string, extra = '', plugins = '[./plugins/heartbeat]'): string {
  const file = join(dir, 'audit.yaml');
  writeFileSync(
    file,
    `deployment: plug\nplugins: ${plugins}\nsources:\n  logs:\n    files: { audit: logs/audit.jsonl, gateway: logs/gateway.jsonl }\n${extra}`,
  );
  return file;
}

function errorOf(fn: () => unknown): AuditError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AuditError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'aegis-audit', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join(''), err: err.join('') };
}

test('a plugin folder adds its checks to the registry, validated, with the runbook beside it', () => {
  const dir = workdir();
  const loaded = loadConfig(config(dir), { registry });
  expect([...loaded.registry.keys()]).toEqual([...[...registry.keys(), 'log-heartbeat'].sort()]);
  const check = loaded.registry.get('log-heartbeat');
  expect(check?.meta.runbook).toBe(join(dir, 'plugins', 'heartbeat', 'log-heartbeat.md'));
  expect(loaded.checkOptions.get('log-heartbeat')).toEqual({ window: 86_400_000, services: [] });
  // Its options are configured like a built-in's, compound durations included.
  const tuned = loadConfig(config(dir, 'checks:\n  log-heartbeat: { options: { window: 1h30m } }\n'), { registry });
  expect(tuned.checkOptions.get('log-heartbeat')).toEqual({ window: 5_400_000, services: [] });
});

test('a plugin check runs, reports and sets the exit code like a built-in', async () => {
  const dir = workdir();
  const r = await cli(['run', '--config', config(dir), '--checks', 'log-heartbeat', '--format', 'json', '--out', join(dir, 'out')]);
  expect(r.code).toBe(1);
  const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as Report;
  const result = report.results.find((x) => x.check === 'log-heartbeat');
  expect(result?.status).toBe('fail');
  expect(result?.findings.map((f) => [f.resource, f.severity, f.message])).toEqual([['service=gateway', 'medium', 'Service gateway logged nothing in the last 1d.']]);
  expect(result?.measurements).toEqual([{ name: 'heartbeat_services', value: 2, help: 'Services whose logs were looked at' }]);
  // Told to watch only the service that logs, it passes.
  const ok = await cli(['run', '--config', config(dir, 'checks:\n  log-heartbeat: { options: { services: [audit] } }\n'), '--checks', 'log-heartbeat', '--format', 'json', '--out', join(dir, 'out2')]);
  expect(ok.code).toBe(0);
});

test('a misspelt option is a config error naming it and the known ones, for built-ins and plugins alike', async () => {
  const dir = workdir();
  const e = errorOf(() => loadConfig(config(dir, 'checks:\n  credential-age: { options: { apiKeyMaxAg: 30d } }\n  log-heartbeat:\n    options: { windw: 2h }\n'), { registry }));
  expect(e.message).toContain(`audit.yaml:7:45: checks.credential-age.options.apiKeyMaxAg: unknown option "apiKeyMaxAg" of check credential-age (known: apiKeyMaxAge, rotationPolicies, maxFindings)`);
  expect(e.message).toContain('audit.yaml:9:23: checks.log-heartbeat.options.windw: unknown option "windw" of check log-heartbeat (known: window, services)');
  const r = await cli(['config', 'validate', join(dir, 'audit.yaml')]);
  expect(r.code).toBe(2);
  expect(r.err).not.toMatch(/\n\s+at /);
});

describe('a broken plugin stops the process at start (exit 2) naming the file and the fault', () => {
  const cases: [string, string, RegExp][] = [
    ['bad-title.js', `const { defineCheck, z } = require('aegis-audit/plugin');\nmodule.exports = defineCheck({ meta: { id: 'x-check', title: 'Ensure things are fine', description: 'Something long enough.', severity: 'low', sources: [], schedule: '* * * * *', checklist: [], runbook: 'x.md', remediation: 'Fix the things.' }, messages: { m: 'x' }, options: z.object({}), async run() {} });\n`, /bad-title\.js: invalid check metadata: meta\.title: states the passing condition/],
    ['dup.js', `const { defineCheck, z } = require('aegis-audit/plugin');\nmodule.exports = defineCheck({ meta: { id: 'receipt-chain', title: 'The chain is fine today', description: 'Something long enough.', severity: 'low', sources: [], schedule: '* * * * *', checklist: [], runbook: 'x.md', remediation: 'Fix the things.' }, messages: { m: 'x' }, options: z.object({}), async run() {} });\n`, /dup\.js: check id receipt-chain is already defined by a built-in check/],
    ['nothing.js', `exports.helper = () => 1;\n`, /nothing\.js: exports no check/],
    ['esm.js', `import x from 'y';\nexport default x;\n`, /esm\.js: cannot load plugin module: .*\(plugins are CommonJS/],
    ['throws.js', `throw new Error('boom at load');\n`, /throws\.js: plugin module threw while loading: boom at load/],
    ['no-defaults.js', `const { defineCheck, z } = require('aegis-audit/plugin');\nmodule.exports = defineCheck({ meta: { id: 'y-check', title: 'The y condition holds', description: 'Something long enough.', severity: 'low', sources: [], schedule: '* * * * *', checklist: [], runbook: 'x.md', remediation: 'Fix the things.' }, messages: { m: 'x' }, options: z.object({ limit: z.number() }), async run() {} });\n`, /no-defaults\.js: check y-check: options must be a zod schema whose every field has a default/],
    ['bad-item.js', `const { defineCheck, z } = require('aegis-audit/plugin');\nmodule.exports = defineCheck({ meta: { id: 'z-check', title: 'The z condition holds', description: 'Something long enough.', severity: 'low', sources: [], schedule: '* * * * *', checklist: ['no-such-item'], runbook: 'x.md', remediation: 'Fix the things.' }, messages: { m: 'x' }, options: z.object({}), async run() {} });\n`, /bad-item\.js: check z-check: unknown checklist item no-such-item \(known: /],
  ];
  test.each(cases)('%s', async (name, source, expected) => {
    const dir = workdir();
    writeFileSync(join(dir, name), source);
    const file = config(dir, '', `[./${name}]`);
    expect(errorOf(() => loadConfig(file, { registry })).message).toMatch(expected);
    const r = await cli(['config', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(expected);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  test('a plugin path that does not exist names the config line', () => {
    const dir = workdir();
    expect(errorOf(() => loadConfig(config(dir, '', '[./nowhere]'), { registry })).message).toMatch(/audit\.yaml:2:11: plugins\[0\]: plugin path .*nowhere cannot be read \(ENOENT\)/);
  });
});
