/**
 * The daemon loads what its first cycle would load on first use before it answers (a require is
 * synchronous: mid-cycle it held /metrics and /healthz up). What each check's preload loads is
 * asserted in a process of its own (jest keeps a module registry of its own).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fleetOfOne } from '../../src/config/fleet';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { preloadFleet } from '../../src/daemon/index';
import { REPO_ROOT, expectFreshBuild } from '../helpers/build';
import { config, stubCheck, testRegistry } from './helpers';
import { createLogger } from '../../src/core/logger';
import { Writable } from 'node:stream';

function withPreload(id: string, preload: () => void): AnyCheck {
  const base = stubCheck(id, async () => undefined);
  return defineCheck({ ...base, preload } as AnyCheck) as AnyCheck;
}

test("preloadFleet runs the preload of every enabled check of every deployment; a failing one is logged and the others still run", () => {
  const calls: string[] = [];
  const registry = testRegistry([
    withPreload('alpha-check', () => calls.push('alpha-check')),
    withPreload('broken-check', () => {
      throw new Error('cannot load the parser');
    }),
    withPreload('disabled-check', () => calls.push('disabled-check')),
    stubCheck('plain-check', async () => undefined),
    withPreload('zeta-check', () => calls.push('zeta-check')),
  ]);
  const loaded = config('deployment: d1\nchecks:\n  disabled-check:\n    enabled: false\n', registry);
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
  preloadFleet(fleetOfOne(loaded, registry), registry, logger);
  expect(calls).toEqual(['alpha-check', 'zeta-check']);
  expect(lines.join('')).toMatch(/broken-check.*Preloading failed|Preloading failed.*broken-check/);
});

test("the built-in checks' preloads load what their runs would load on first use", () => {
  expectFreshBuild();
  const script = `
    const { registry } = require(${JSON.stringify(join(REPO_ROOT, 'dist/checks'))});
    const before = new Set(Object.keys(require.cache));
    for (const c of registry.values()) if (c.preload) c.preload();
    const added = Object.keys(require.cache).filter((k) => !before.has(k));
    process.stdout.write(JSON.stringify(added));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  const added = JSON.parse(r.stdout) as string[];
  for (const mod of ['piscina', 'sodium-native', 'yaml', 'dockerfile-ast', 'jose']) {
    expect(added.some((f) => f.includes(`node_modules/${mod}/`))).toBe(true);
  }
});
