/**
 * Where state and reports land does not depend on the directory the auditor was started
 * from: relative paths — and the defaults of state.dir and outputs.dir — resolve against
 * the config file's folder, as the docs say.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import { createStateStore, FileStateStore } from '../../src/sources/state';
import { main } from '../../src/cli';

test('state.dir and outputs.dir default beside the config file', () => {
  const { config } = parseConfig('deployment: p\n', '/srv/aegis/audit.yaml');
  expect(config.state.dir).toBe('/srv/aegis/.aegis-audit/state');
  expect(config.outputs.dir).toBe('/srv/aegis/reports');
  const store = createStateStore(config);
  expect(store).toBeInstanceOf(FileStateStore);
  expect((store as FileStateStore).dir).toBe('/srv/aegis/.aegis-audit/state');
});

test('relative state.dir and outputs.dir are relative to the config file; absolute ones stay', () => {
  const rel = parseConfig('deployment: p\nstate: { dir: state }\noutputs: { dir: out/reports }\n', '/srv/aegis/audit.yaml').config;
  expect(rel.state.dir).toBe('/srv/aegis/state');
  expect(rel.outputs.dir).toBe('/srv/aegis/out/reports');
  const abs = parseConfig('deployment: p\nstate: { dir: /var/lib/aegis-audit }\noutputs: { dir: /var/reports }\n', '/srv/aegis/audit.yaml').config;
  expect(abs.state.dir).toBe('/var/lib/aegis-audit');
  expect(abs.outputs.dir).toBe('/var/reports');
});

test('`run` from another working directory writes its reports beside the config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'paths-'));
  try {
    writeFileSync(join(dir, 'audit.yaml'), 'deployment: p\noutputs: { formats: [json] }\n');
    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
    expect(process.cwd()).not.toBe(dir);
    expect(await main(['node', 'aegis-audit', 'run', '--config', join(dir, 'audit.yaml')], io)).toBe(0);
    expect(existsSync(join(dir, 'reports', 'report.json'))).toBe(true);
    expect(out.join('')).toContain(`reports: ${join(dir, 'reports')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
