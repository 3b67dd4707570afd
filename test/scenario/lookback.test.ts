/**
 * "Latest" means latest, however long ago (issue: lookback, not window). On the sandbox,
 * whose audit instances last started 12 days, 2 days and 5 hours ago while the log window is
 * a week: the first run reads back the whole lookback and finds the 12-day-old start on the
 * PEM fallback; the next run (same state dir) reads only what was logged since and sees a
 * restart; a service with no start within the lookback is an error naming the key to widen.
 * Once over JSON-lines files, once over CloudWatch Logs (the loopback emulator, through the
 * real SDK), with the same verdicts.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import type { CheckResult } from '../../src/core/types';
import { adminUrl } from '../helpers/pg';

const root = mkdtempSync(join(tmpdir(), 'lookback-'));
const DAY = 86_400_000;
let sb: Sandbox;

beforeAll(async () => {
  sb = await buildSandbox({ dir: join(root, 'sb'), seed: 7, rows: 60, violations: ['key-source-file'], adminUrl: adminUrl() });
}, 60_000);

afterAll(async () => {
  await sb?.stop();
  rmSync(root, { recursive: true, force: true });
});

const fileOf = (instance: string) => join(sb.dir, 'logs', 'audit', `audit-${instance.replace(/^audit-/, '')}.jsonl`);

function startLines(instance: string, at: number, receipt: string, root: string): string[] {
  const line = (d: number, key: string, source: string) =>
    JSON.stringify({ ts: new Date(at + d).toISOString(), service: 'audit', instance, event: 'signing_key_loaded', key, source });
  return [line(2, 'receipt', receipt), line(3, 'root', root)];
}

/** A copy of the sandbox's audit.yaml with `edit` applied, written beside it (relative paths stay valid). */
function configVariant(name: string, edit: (c: Record<string, any>) => void): string {
  const c = parse(readFileSync(sb.configPath, 'utf8')) as Record<string, any>;
  edit(c);
  const path = join(sb.dir, `${name}.yaml`);
  writeFileSync(path, stringify(c));
  return path;
}

async function signingKeySource(configPath: string): Promise<CheckResult> {
  const report = await runAudit(loadConfig(configPath, { registry }), registry, { only: ['signing-key-source'] });
  return report.results[0];
}

const measured = (r: CheckResult, name: string) => r.measurements?.find((m) => m.name === name)?.value;
const findings = (r: CheckResult) => r.findings.map((f) => `${f.messageId} ${f.resource}`).sort();

test('the sandbox lays its starts out past the log window, and declares the 12-day-old fallback', () => {
  const cfg = parse(readFileSync(sb.configPath, 'utf8')) as { sources: { logs: Record<string, unknown> } };
  expect(cfg.sources.logs.window).toBe('7d');
  expect(cfg.sources.logs.lookback).toBeUndefined(); // the default, 30d
  const latest = sb.plan.instances.map((i) => Math.round((sb.plan.opts.now.getTime() - i.starts.at(-1)!.at.getTime()) / 3_600_000));
  expect(latest).toEqual([48, 12 * 24, 5]);
  expect(sb.manifest.violations).toEqual([{ check: 'signing-key-source', resource: 'instance=audit-2,key=receipt' }]);
});

describe('over JSON-lines files', () => {
  test('first run: the 12-day-old start on the fallback is found, the 2-day-old and 5-hour-old ones on env pass', async () => {
    const r = await signingKeySource(sb.configPath);
    expect({ status: r.status, error: r.error }).toEqual({ status: 'fail', error: null });
    expect(findings(r)).toEqual(['fileFallback instance=audit-2,key=receipt']);
    const twelveDaysAgo = sb.plan.instances[1].starts.at(-1)!.at.getTime();
    expect(r.findings[0].message).toContain(`at its latest start (${new Date(twelveDaysAgo + 2).toISOString()})`);
    expect(measured(r, 'signing_key_instances')).toBe(3);
    // Every start within 30 days: audit-1 3 starts, audit-2 3 (20, 16, 12 days ago), audit-3 2; two loads each.
    expect(measured(r, 'signing_key_events_read')).toBe(16);

    // The state is bound to the logs it describes (the glob), not to the deployment's name,
    // and records where each file was read up to.
    const stateFiles = readdirSync(join(sb.dir, 'state')).filter((f) => f.startsWith('signing-key-source'));
    expect(stateFiles).toHaveLength(1);
    const kept = JSON.parse(readFileSync(join(sb.dir, 'state', stateFiles[0]), 'utf8')) as { location: string; cursor: { at: { files: Record<string, { offset: number }> } }; entries: unknown[] };
    expect(kept.location).toBe(`files:${join(sb.dir, 'logs', 'audit', '*.jsonl')}`);
    expect(kept.entries).toHaveLength(3);
    const offsets = Object.values(kept.cursor.at.files).map((f) => f.offset).sort((a, b) => a - b);
    const sizes = readdirSync(join(sb.dir, 'logs', 'audit')).map((f) => statSync(join(sb.dir, 'logs', 'audit', f)).size).sort((a, b) => a - b);
    expect(offsets).toEqual(sizes);
    expect(JSON.stringify(kept)).not.toContain(sb.plan.opts.deployment + ':');
  });

  test('next run: only what was logged since is read; a restart after the state was saved is seen', async () => {
    const now = Date.now();
    // audit-2 redeployed right (env), audit-1 restarted on the fallback.
    appendFileSync(fileOf('audit-2'), startLines('audit-2', now - 60_000, 'env', 'env').join('\n') + '\n');
    appendFileSync(fileOf('audit-1'), startLines('audit-1', now - 30_000, 'file', 'env').join('\n') + '\n');
    const r = await signingKeySource(sb.configPath);
    expect(findings(r)).toEqual(['fileFallback instance=audit-1,key=receipt']);
    expect(measured(r, 'signing_key_events_read')).toBe(4);
    // Nothing new: the verdict holds from state, nothing is read.
    const again = await signingKeySource(sb.configPath);
    expect(findings(again)).toEqual(['fileFallback instance=audit-1,key=receipt']);
    expect(measured(again, 'signing_key_events_read')).toBe(0);
  });

  test('no start at all within the lookback is an error that names the key to widen', async () => {
    const path = configVariant('short-lookback', (c) => {
      c.sources.logs.lookback = '1s'; // the restarts appended above are seconds old
      c.state = { dir: 'state-short' };
    });
    const r = await signingKeySource(path);
    expect(r.status).toBe('error');
    expect(r.error).toBe(
      'logs: service audit: no signing_key_loaded event in the last 1s (sources.logs.lookback), so no start of the audit service can be judged; ' +
        'if it has run longer than that without a restart, widen sources.logs.lookback to cover its last start',
    );
  });
});

describe('over CloudWatch Logs', () => {
  const GROUP = '/aegis/sandbox/audit';
  let cwConfig: string;

  beforeAll(() => {
    // The same audit lines, shipped to CloudWatch (one stream per instance) as the agent would.
    const emu = sb.cloud!.emulators.logs;
    for (const file of readdirSync(join(sb.dir, 'logs', 'audit')).sort()) {
      const byStream = new Map<string, { timestamp: number; message: string }[]>();
      for (const line of readFileSync(join(sb.dir, 'logs', 'audit', file), 'utf8').split('\n')) {
        let obj: { ts?: string; instance?: string };
        try {
          obj = JSON.parse(line) as typeof obj;
        } catch {
          continue;
        }
        if (!obj.ts || !obj.instance) continue;
        const list = byStream.get(obj.instance) ?? [];
        list.push({ timestamp: Date.parse(obj.ts), message: line });
        byStream.set(obj.instance, list);
      }
      for (const [stream, events] of byStream) emu.putEvents(GROUP, stream, events.sort((a, b) => a.timestamp - b.timestamp));
    }
    cwConfig = configVariant('cloudwatch-audit', (c) => {
      delete c.sources.logs.files.audit;
      c.sources.logs.cloudwatch.groups.audit = GROUP;
      c.state = { dir: 'state-cw' };
    });
  });

  test('first run pages the whole lookback by time and finds the same starts; the next reads from the last read less the ingestion delay', async () => {
    const emu = sb.cloud!.emulators.logs;
    emu.filterRequests.length = 0;
    const before = Date.now();
    const r = await signingKeySource(cwConfig);
    expect(findings(r)).toEqual(['fileFallback instance=audit-1,key=receipt']); // the restarts appended above are in the group too
    expect(measured(r, 'signing_key_instances')).toBe(3);
    const firsts = emu.filterRequests.filter((q) => q.page === 0 && q.filterPattern === '{ $.event = "signing_key_loaded" }');
    // 30 days in day-long slices (startTime/endTime inclusive, epoch ms), the last one open-ended.
    expect(firsts.length).toBeGreaterThanOrEqual(30);
    expect(firsts[0].startTime).toBeGreaterThanOrEqual(before - 30 * DAY - 60_000);
    expect(firsts[0].startTime).toBeLessThanOrEqual(before - 30 * DAY + 60_000);
    for (let i = 1; i < firsts.length; i++) expect(firsts[i].startTime).toBe(firsts[i - 1].endTime! + 1);
    expect(firsts.at(-1)!.endTime).toBeUndefined();
    for (const q of firsts.slice(0, -1)) expect(q.endTime! - q.startTime!).toBeLessThan(DAY);

    // A restart that reached CloudWatch after the first read, stamped 3 minutes before it
    // (within the 10-minute ingestion delay), and one stamped after it.
    emu.putEvents(GROUP, 'audit-3', startLines('audit-3', before - 3 * 60_000, 'env', 'generated').map((m) => ({ timestamp: Date.parse(JSON.parse(m).ts), message: m })));
    emu.putEvents(GROUP, 'audit-1', startLines('audit-1', Date.now(), 'env', 'env').map((m) => ({ timestamp: Date.parse(JSON.parse(m).ts), message: m })));
    emu.filterRequests.length = 0;
    const next = await signingKeySource(cwConfig);
    expect(findings(next)).toEqual(['generated instance=audit-3,key=root']);
    const resumed = emu.filterRequests.filter((q) => q.page === 0);
    expect(resumed).toHaveLength(1);
    expect(resumed[0].startTime).toBeGreaterThanOrEqual(before - 10 * 60_000);
    expect(resumed[0].startTime).toBeLessThan(before - 3 * 60_000);
    // Only the margin and what came after crossed the wire: the two new starts, and the two
    // restarts of the file test (seconds before the first read) read again, folded in once.
    expect(measured(next, 'signing_key_events_read')).toBe(8);
  });
});
