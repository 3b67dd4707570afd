import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFleetFile, mergeDefaults, parseFleet, selectDeployments } from '../../src/config/fleet';
import { AuditError } from '../../src/core/errors';
import { registry } from '../../checks';
import { main } from '../../src/cli';

async function errorOf(p: Promise<unknown>): Promise<AuditError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AuditError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

function workdir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-config-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(['node', 'aegis-audit', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('merge rule: maps merge at any depth, lists and scalars replace', () => {
  const base = { services: ['a', 'b'], sources: { logs: { window: '1h', files: { audit: 'x' } } }, run: { timeout: '1m' } };
  const over = { services: ['c'], sources: { logs: { files: { gateway: 'y' } } }, run: { timeout: '2m' } };
  expect(mergeDefaults(base, over)).toEqual({
    services: ['c'],
    sources: { logs: { window: '1h', files: { audit: 'x', gateway: 'y' } } },
    run: { timeout: '2m' },
  });
  // The defaults object is not changed by a merge.
  expect(base.sources.logs.files).toEqual({ audit: 'x' });
});

test("today's format is a fleet of one, loaded as before", async () => {
  const fleet = await parseFleet('deployment: prod\nrun: { concurrency: 3 }\n', '/etc/a/audit.yaml', { registry });
  expect(fleet.single).toBe(true);
  expect(fleet.deployments.map((d) => d.config.deployment)).toEqual(['prod']);
  expect(fleet.settings.concurrency).toBe(3);
  expect(fleet.settings.outputsDir).toBe('/etc/a/reports');
});

test('deployments: and include: globs, with defaults merged under each and paths relative to their own file', async () => {
  const dir = workdir({
    'fleet.yaml': [
      'fleet: { concurrency: 6 }',
      'defaults:',
      '  services: [identity, audit]',
      '  sources:',
      '    logs: { files: { audit: "logs/audit/*.jsonl" }, window: 2h }',
      '  checks:',
      '    credential-age: { options: { apiKeyMaxAge: 30d } }',
      'deployments:',
      '  - deployment: prod-eu',
      '    sources:',
      '      logs: { files: { gateway: "eu/gateway/*.jsonl" } }',
      '  - deployment: prod-us',
      '    services: [gateway]',
      'include: ["tenants/*.yaml"]',
      '',
    ].join('\n'),
    'tenants/b.yaml': 'deployment: tenant-b\nwaivers: waivers.yaml\nchecks:\n  credential-age: { enabled: false }\n',
    'tenants/a.yaml': 'deployment: tenant-a\nsources:\n  logs: { window: 30m }\n',
  });
  const fleet = await loadFleetFile(join(dir, 'fleet.yaml'), { registry });
  expect(fleet.single).toBe(false);
  // Inline first, then included files in path order.
  expect(fleet.deployments.map((d) => d.config.deployment)).toEqual(['prod-eu', 'prod-us', 'tenant-a', 'tenant-b']);
  const [eu, us, a, b] = fleet.deployments.map((d) => d.config);
  expect(eu.sources.logs?.files).toEqual({ audit: join(dir, 'logs/audit/*.jsonl'), gateway: join(dir, 'eu/gateway/*.jsonl') });
  expect(eu.sources.logs?.window).toBe(2 * 3_600_000);
  expect(us.services).toEqual(['gateway']);
  expect(eu.services).toEqual(['identity', 'audit']);
  expect(a.sources.logs?.window).toBe(30 * 60_000);
  expect(a.sources.logs?.files).toEqual({ audit: join(dir, 'logs/audit/*.jsonl') });
  // An included file's relative paths are relative to that file.
  expect(b.waivers).toBe(join(dir, 'tenants', 'waivers.yaml'));
  expect(b.checks['credential-age']).toMatchObject({ enabled: false });
  expect(fleet.deployments[0].checkOptions.get('credential-age')).toMatchObject({ apiKeyMaxAge: 30 * 86_400_000 });
  // Defaults' defaults (state, outputs) resolve beside the fleet config, shared.
  expect(eu.state.dir).toBe(join(dir, '.aegis-audit/state'));
  expect(a.outputs.dir).toBe(join(dir, 'reports'));
  expect(fleet.settings).toMatchObject({ concurrency: 6, maxPerDeployment: 3, outputsDir: join(dir, 'reports') });
  expect(fleet.deployments[2].file).toBe(join(dir, 'tenants/a.yaml'));
  expect(fleet.deployments[2].digest).not.toBe(fleet.deployments[3].digest);
  expect(selectDeployments(fleet, ['tenant-b', 'prod-eu']).map((d) => d.config.deployment)).toEqual(['prod-eu', 'tenant-b']);
  expect(() => selectDeployments(fleet, ['nope'])).toThrow('unknown deployment nope (known: prod-eu, prod-us, tenant-a, tenant-b)');
});

test('a deployment named twice is an error naming both places', async () => {
  const dir = workdir({
    'fleet.yaml': 'deployments:\n  - deployment: prod\n  - { deployment: staging }\ninclude: ["d/*.yaml"]\n',
    'd/x.yaml': '# the same name again\ndeployment: prod\n',
  });
  const e = await errorOf(loadFleetFile(join(dir, 'fleet.yaml'), { registry }));
  expect(e.message).toContain(`${join(dir, 'd/x.yaml')}:2:13: deployment: "prod" is defined twice (first at ${join(dir, 'fleet.yaml')}:2:17)`);
  const r = await cli(['config', 'validate', join(dir, 'fleet.yaml')]);
  expect(r.code).toBe(2);
  expect(r.err).toContain('is defined twice');
  expect(r.err).not.toMatch(/\n\s+at /);
});

test('bad entries name the file and line they were written in', async () => {
  const dir = workdir({
    'fleet.yaml': [
      'defaults:',
      '  outputs: { formats: [json] }',
      'deployments:',
      '  - deployment: prod',
      '    sources: { postgres: { url: "${NOT_SET_FLEET_VAR}" } }',
      '  - deployment: "bad name"',
      'include: ["d/*.yaml", "missing.yaml", "none/*.yaml"]',
      '',
    ].join('\n'),
    'd/a.yaml': 'deployment: a\nchecks:\n  no-such-check: {}\n',
    'd/b.yaml': 'deployment: b\nsources: [\n',
    'd/c.yaml': 'deployment: c\nserver: { listen: "127.0.0.1:1" }\n',
    'd/d.yaml': '- deployment: d\n',
  });
  const e = await errorOf(loadFleetFile(join(dir, 'fleet.yaml'), { registry, env: {} }));
  const f = join(dir, 'fleet.yaml');
  expect(e.message).toContain(`${f}:5:33: deployments[0].sources.postgres.url: environment variable NOT_SET_FLEET_VAR is not set`);
  expect(e.message).toContain(`${f}:6:17: deployment: a deployment name`);
  expect(e.message).toContain(`${join(dir, 'd/a.yaml')}:3:18: checks.no-such-check: unknown check id`);
  expect(e.message).toMatch(new RegExp(`${join(dir, 'd/b.yaml').replace(/[.]/g, '\\.')}:\\d+:\\d+: invalid YAML`));
  expect(e.message).toContain(`${join(dir, 'd/c.yaml')}:2:9: server: server is set once for the whole fleet`);
  expect(e.message).toContain(`${join(dir, 'd/d.yaml')}:1:1: an included file holds one deployment`);
  expect(e.message).toContain(`${f}:7:23: include[1]: `);
  expect(e.message).toContain('missing.yaml: cannot read included deployment file (ENOENT)');
  expect(e.message).toContain(`${f}:7:39: include[2]: "none/*.yaml" matches no file`);
});

test('a bad default is reported once, where the default is written', async () => {
  const dir = workdir({
    'fleet.yaml': 'defaults:\n  run: { timeout: soon }\ndeployments:\n  - deployment: a\n  - deployment: b\n',
  });
  const e = await errorOf(loadFleetFile(join(dir, 'fleet.yaml'), { registry }));
  const lines = e.message.split('\n').filter((l) => l.includes('run.timeout'));
  expect(lines).toEqual([`  ${join(dir, 'fleet.yaml')}:2:19: run.timeout: invalid duration "soon" (expected e.g. 90s, 15m, 24h, 90d, or a compound such as 1h30m)`]);
});

test('fleet shape errors: a top-level deployment, unknown keys, process keys in defaults, reserved names, bounds', async () => {
  const mixed = await errorOf(parseFleet('deployment: prod\ndeployments: [{ deployment: a }]\n', '/x/fleet.yaml', { registry }));
  expect(mixed.message).toContain('/x/fleet.yaml:1:13: deployment: a fleet config names its deployments in deployments:');
  const unknown = await errorOf(parseFleet('deployments: [{ deployment: a }]\nsources: {}\n', '/x/fleet.yaml', { registry }));
  expect(unknown.message).toContain('/x/fleet.yaml:2:10: (top level): unknown key "sources" (a fleet config has defaults, deployments, include');
  const proc = await errorOf(parseFleet('defaults: { leader_lock: { url: x }, deployment: z }\ndeployments: [{ deployment: a }]\n', '/x/fleet.yaml', { registry }));
  expect(proc.message).toContain('defaults.leader_lock: leader_lock is set once for the whole fleet');
  expect(proc.message).toContain('defaults.deployment: each deployment names itself');
  const reserved = await errorOf(parseFleet('deployments: [{ deployment: history }]\n', '/x/fleet.yaml', { registry }));
  expect(reserved.message).toContain('"history" is reserved in a fleet');
  const empty = await errorOf(parseFleet('deployments: []\n', '/x/fleet.yaml', { registry }));
  expect(empty.message).toContain('the fleet has no deployment');
  // The queue carries the checks of every deployment of the fleet.
  const queued = await parseFleet('queue: { url: "postgres://q/db" }\ndeployments: [{ deployment: a }, { deployment: b }]\n', '/x/fleet.yaml', { registry });
  expect(queued.settings.queue).toMatchObject({ url: 'postgres://q/db' });
  expect(queued.deployments.map((d) => d.config.deployment)).toEqual(['a', 'b']);
  const one = await parseFleet('queue: { url: "postgres://q/db" }\ndeployments: [{ deployment: a }]\n', '/x/fleet.yaml', { registry });
  expect(one.settings.queue).toMatchObject({ url: 'postgres://q/db', schema: 'aegis_audit' });
  const inDeployment = await errorOf(parseFleet('deployments: [{ deployment: a, queue: { url: "postgres://q/db" } }]\n', '/x/fleet.yaml', { registry }));
  expect(inDeployment.message).toContain('queue: queue is set once for the whole fleet');
  const many = await errorOf(parseFleet(`include: [${Array.from({ length: 101 }, (_, i) => `"d${i}.yaml"`).join(', ')}]\n`, '/x/fleet.yaml', { registry }));
  expect(many.message).toContain('include: at most 100 patterns');
});

test('an included file that is not a regular file is refused, naming it', async () => {
  const dir = workdir({ 'fleet.yaml': 'include: ["d/*.yaml", "d/b.fifo"]\n', 'd/a.yaml': 'deployment: a\n' });
  execFileSync('mkfifo', [join(dir, 'd/b.fifo')]);
  const e = await errorOf(loadFleetFile(join(dir, 'fleet.yaml'), { registry }));
  expect(e.message).toContain(`${join(dir, 'fleet.yaml')}:1:23: include[1]: ${join(dir, 'd/b.fifo')}: not a regular file (a FIFO)`);
});
