/**
 * receipt-chain over time, on the sandbox's real Postgres: a pass longer than one
 * statement_timeout, a pass whose connection is killed, a process killed mid-pass, the same
 * config and state dir in front of three databases in turn, and a row altered after it was
 * verified.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { parse, stringify } from 'yaml';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { rebaseConfigPaths } from '../../src/config/paths';
import { runAudit } from '../../src/app/audit';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import type { CheckResult, Report } from '../../src/core/types';
import { adminUrl } from '../helpers/pg';

const root = mkdtempSync(join(tmpdir(), 'chain-time-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');

async function sandbox(name: string, rows: number, seed = 21): Promise<Sandbox> {
  return buildSandbox({ dir: join(root, name), seed, rows, violations: 'none', adminUrl: adminUrl(), cloud: false });
}

/**
 * A config for the sandbox's deployment written to `dir`, with the receipt-chain settings and
 * any other overrides; paths are rebased so it works from there.
 */
function writeConfig(sb: Sandbox, dir: string, edit: (raw: Record<string, unknown>) => void): string {
  const raw = parse(readFileSync(sb.configPath, 'utf8')) as Record<string, unknown>;
  rebaseConfigPaths(raw, dirname(sb.configPath), dir);
  edit(raw);
  const file = join(dir, 'audit.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

function chainSettings(options: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { 'receipt-chain': { options, ...extra } };
}

async function runChain(configFile: string, opts: { env?: NodeJS.ProcessEnv; now?: Date } = {}): Promise<CheckResult> {
  const loaded = loadConfig(configFile, { registry, env: { ...process.env, ...opts.env } });
  const report: Report = await runAudit(loaded, registry, { only: ['receipt-chain'], now: opts.now ? () => opts.now as Date : undefined });
  return report.results[0];
}

const measured = (r: CheckResult, name: string) => r.measurements?.find((m) => m.name === name)?.value;
const failing = (r: CheckResult) =>
  r.findings
    .filter((f) => f.severity !== 'info')
    .map((f) => `${f.messageId} ${f.resource}`)
    .sort();
const notes = (r: CheckResult) => r.findings.filter((f) => f.severity === 'info').map((f) => f.messageId).sort();

async function sql<T extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

/** The checkpoint file's lastId (0 while there is none). */
function savedLastId(stateDir: string): number {
  if (!existsSync(stateDir)) return 0;
  for (const f of readdirSync(stateDir).filter((n) => n.startsWith('receipt-chain') && n.endsWith('.json'))) {
    try {
      const v = JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as { lastId?: number };
      if (typeof v.lastId === 'number') return v.lastId;
    } catch {
      // being replaced this instant
    }
  }
  return 0;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Holds an exclusive lock on the audit table once the pass has made progress, so the
 * auditor's next batch waits on it: a moment when its connection is certainly mid-statement.
 */
async function lockWhenBlocked(url: string, database: string): Promise<{ release: () => Promise<void> }> {
  const locker = new Client({ connectionString: url });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE public.audit_log IN ACCESS EXCLUSIVE MODE');
  await until(
    async () =>
      (await sql<{ n: string }>(url, `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'aegis-audit' AND wait_event_type = 'Lock'`, [database]))[0].n !== '0',
    'the auditor to wait on the lock',
  );
  return {
    release: async () => {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    },
  };
}

test('a chain that takes far longer than statement_timeout to read verifies completely in one run', async () => {
  // 60 000 rows: on an idle machine 6 000 were read in under 1 s, short of four statement
  // timeouts, and since the workers verify rows as the server sent them 12 000 were too (919 ms
  // under CI's load); a pass at the machine's limit (about 30 000 rows/s here) still takes 2 s.
  const sb = await sandbox('long-pass', 60_000);
  try {
    const dir = mkdtempSync(join(root, 'long-pass-cfg-'));
    const file = writeConfig(sb, dir, (raw) => {
      (raw.sources as { postgres: Record<string, unknown> }).postgres.statement_timeout = '250ms';
      raw.checks = chainSettings({ batchSize: 250 });
    });
    const r = await runChain(file);
    expect({ status: r.status, error: r.error }).toEqual({ status: 'pass', error: null });
    expect(measured(r, 'receipt_rows_verified')).toBe(60_000);
    // The pass as a whole lived many statement timeouts.
    expect(r.durationMs).toBeGreaterThan(4 * 250);
  } finally {
    await sb.stop();
  }
}, 180_000);

test('a connection killed mid-pass: the run says how far it came, the next resumes and ends with the findings of an uninterrupted pass', async () => {
  const sb = await sandbox('killed', 4000);
  try {
    const database = new URL(sb.postgresUrl).pathname.slice(1);
    // One row altered before the cut, one after it.
    await sql(sb.postgresUrl, `UPDATE audit_log SET payload = jsonb_set(payload, '{forged}', 'true') WHERE id IN (150, 3500)`);
    const settings = chainSettings({ batchSize: 100, checkpoint_interval: 0 });
    const refDir = mkdtempSync(join(root, 'killed-ref-'));
    const reference = await runChain(writeConfig(sb, refDir, (raw) => ((raw.checks = settings), (raw.state = { dir: 'state' }))));
    expect(failing(reference)).toEqual(['hashMismatch row=150', 'hashMismatch row=3500']);

    const dir = mkdtempSync(join(root, 'killed-cfg-'));
    const file = writeConfig(sb, dir, (raw) => ((raw.checks = settings), (raw.state = { dir: 'state' })));
    const stateDir = join(dir, 'state');
    const pass = runChain(file);
    await until(() => savedLastId(stateDir) >= 400, 'progress to be saved');
    const lock = await lockWhenBlocked(sb.postgresUrl, database);
    const killed = await sql<{ pid: number }>(sb.postgresUrl, `SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'aegis-audit'`, [database]);
    expect(killed.length).toBeGreaterThan(0);
    await lock.release();
    const first = await pass;
    const cut = savedLastId(stateDir);
    expect(cut).toBeGreaterThanOrEqual(400);
    expect(cut).toBeLessThan(3500);
    // Row 150 was verified before the cut: its finding stands, with a note on how far the pass came.
    expect(first.status).toBe('fail');
    expect(failing(first)).toEqual(['hashMismatch row=150']);
    const note = first.findings.find((f) => f.messageId === 'incomplete');
    expect(note?.message).toMatch(new RegExp(`^Verification is incomplete: verified ${String(cut).replace(/\B(?=(\d{3})+(?!\d))/g, ' ')} of 4 000 rows \\(up to row ${cut}\\); postgres: .*terminat.*\\. The rest continues next run\\.$`));

    const second = await runChain(file);
    expect(second.status).toBe('fail');
    expect(measured(second, 'receipt_rows_verified')).toBe(4000 - cut);
    expect(failing(second)).toEqual(failing(reference));
    expect(second.findings.find((f) => f.resource === 'row=3500')?.message).toBe(reference.findings.find((f) => f.resource === 'row=3500')?.message);
  } finally {
    await sb.stop();
  }
}, 180_000);

test('an auditor process killed mid-pass resumes from the progress it saved', async () => {
  if (!existsSync(resolve(__dirname, '../../dist/src/cli.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  const sb = await sandbox('restart', 4000);
  try {
    const database = new URL(sb.postgresUrl).pathname.slice(1);
    const dir = mkdtempSync(join(root, 'restart-cfg-'));
    const file = writeConfig(sb, dir, (raw) => ((raw.checks = chainSettings({ batchSize: 100, checkpoint_interval: 0 })), (raw.state = { dir: 'state' })));
    const stateDir = join(dir, 'state');
    const child = spawn('node', [CLI, 'run', '--config', file, '--checks', 'receipt-chain', '--out', join(dir, 'out')], { env: { ...process.env }, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code, signal) => r(signal ? -1 : code)));
    try {
      await until(() => savedLastId(stateDir) >= 400, 'the child to save progress');
      const lock = await lockWhenBlocked(sb.postgresUrl, database);
      child.kill('SIGKILL');
      expect(await exited).toBe(-1);
      await lock.release();
    } finally {
      child.kill('SIGKILL');
    }
    const saved = savedLastId(stateDir);
    expect(saved).toBeGreaterThanOrEqual(400);
    expect(saved).toBeLessThan(4000);
    const { stdout } = await promisify(execFile)('node', [CLI, 'run', '--config', file, '--checks', 'receipt-chain', '--out', join(dir, 'out')], { env: { ...process.env } });
    expect(stdout).toMatch(/receipt-chain/);
    const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as Report;
    const r = report.results[0];
    expect(r.status).toBe('pass');
    expect(measured(r, 'receipt_rows_verified')).toBe(4000 - saved);
    expect(measured(r, 'receipt_chain_verified_rows')).toBe(4000);
  } finally {
    await sb.stop();
  }
}, 180_000);

test('the same config and state dir in front of three databases in turn: pass, fail naming the row, pass with the identity note', async () => {
  const clean = await sandbox('three-clean', 400);
  const extra: string[] = [];
  try {
    const dir = mkdtempSync(join(root, 'three-cfg-'));
    const file = writeConfig(clean, dir, (raw) => {
      (raw.sources as { postgres: Record<string, unknown> }).postgres.url = '${AUDIT_DATABASE_URL}';
      raw.state = { dir: 'state' };
    });
    const against = (url: string) => runChain(file, { env: { AUDIT_DATABASE_URL: url } });

    const first = await against(clean.postgresUrl);
    expect({ status: first.status, failing: failing(first), notes: notes(first) }).toEqual({ status: 'pass', failing: [], notes: ['freshness'] });

    // A restore of that database, with one old row altered: a checkpoint keyed by the
    // deployment's name would start after row 400 and verify nothing.
    const cleanDb = new URL(clean.postgresUrl).pathname.slice(1);
    const restoredDb = `${cleanDb}_restored`;
    await sql(adminUrl(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [cleanDb]);
    await sql(adminUrl(), `CREATE DATABASE ${restoredDb} TEMPLATE ${cleanDb}`);
    extra.push(restoredDb);
    const restoredUrl = Object.assign(new URL(clean.postgresUrl), { pathname: `/${restoredDb}` }).toString();
    await sql(restoredUrl, `UPDATE audit_log SET payload = jsonb_set(payload, '{forged}', 'true') WHERE id = 123`);
    const second = await against(restoredUrl);
    expect(second.status).toBe('fail');
    expect(failing(second)).toEqual(['hashMismatch row=123']);
    expect(second.findings.find((f) => f.resource === 'row=123')?.message).toMatch(/^Audit row 123 was altered/);
    expect(measured(second, 'receipt_rows_verified')).toBe(400);
    expect(second.findings.find((f) => f.messageId === 'chainReplaced')?.message).toMatch(
      new RegExp(`^The chain behind this deployment is a different one than last verified \\(database ${cleanDb} \\(OID \\d+\\) → ${restoredDb} \\(OID \\d+\\)\\); it was verified from the start`),
    );

    // Rebuilt from scratch, longer and intact: a checkpoint of the old chain must not call
    // its rows changed; it is another chain, verified whole.
    const rebuilt = await sandbox('three-rebuilt', 700);
    try {
      const third = await against(rebuilt.postgresUrl);
      expect({ status: third.status, failing: failing(third), notes: notes(third) }).toEqual({ status: 'pass', failing: [], notes: ['chainReplaced', 'freshness'] });
      expect(measured(third, 'receipt_rows_verified')).toBe(700);
      // Back to the second database: its own checkpoint still applies, and its finding stands.
      const back = await against(restoredUrl);
      expect(failing(back)).toEqual(['hashMismatch row=123']);
      expect(measured(back, 'receipt_rows_verified')).toBe(0);
    } finally {
      await rebuilt.stop();
    }
  } finally {
    for (const d of extra) await sql(adminUrl(), `DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
    await clean.stop();
  }
}, 240_000);

test('a row altered after it was verified is found within one rehash_period', async () => {
  const sb = await sandbox('rehash', 1200);
  try {
    const dir = mkdtempSync(join(root, 'rehash-cfg-'));
    const file = writeConfig(sb, dir, (raw) => ((raw.checks = chainSettings({ rehash_period: '2h', batchSize: 100 })), (raw.state = { dir: 'state' })));
    let clock = Date.now();
    const first = await runChain(file, { now: new Date(clock) });
    expect(first.status).toBe('pass');
    // Changed in place after verification, far behind the checkpoint: no new row touches it.
    await sql(sb.postgresUrl, `UPDATE audit_log SET payload = jsonb_set(payload, '{forged}', 'true') WHERE id = 1100`);
    const period = 2 * 3_600_000;
    let foundAfter: number | undefined;
    for (let elapsed = 15 * 60_000; elapsed <= period; elapsed += 15 * 60_000) {
      clock += 15 * 60_000;
      const r = await runChain(file, { now: new Date(clock) });
      expect(measured(r, 'receipt_oldest_verification_age_seconds')).toBeLessThanOrEqual(period / 1000);
      if (failing(r).includes('hashMismatch row=1100')) {
        foundAfter = elapsed;
        break;
      }
      expect(r.status).toBe('pass');
    }
    expect(foundAfter).toBeDefined();
    expect(foundAfter).toBeLessThanOrEqual(period);
  } finally {
    await sb.stop();
  }
}, 240_000);
