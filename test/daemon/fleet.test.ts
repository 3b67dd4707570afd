import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseFleet } from '../../src/config/fleet';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { FairLimiter } from '../../src/core/limiter';
import { silentLogger } from '../../src/core/logger';
import { startDaemon, type Daemon } from '../../src/daemon';
import { get, sample, testRegistry, waitFor } from './helpers';

/** A check whose behaviour depends on the deployment it audits: `stuck` never answers (until its timeout), `bad` fails, others pass. */
function fleetCheck(id: string): AnyCheck {
  return defineCheck({
    meta: {
      id, title: `Fleet stub ${id} holds`, description: 'A check used only by the fleet daemon tests.', severity: 'high',
      sources: [], schedule: '0 0 1 1 *', checklist: [], runbook: `docs/runbooks/${id}.md`, remediation: 'Nothing: a test check.',
    },
    messages: { bad: 'Deployment {{d}} is bad.' },
    options: z.object({}),
    async run(ctx) {
      if (ctx.deployment === 'stuck') {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
      if (ctx.deployment === 'bad') ctx.report({ messageId: 'bad', data: { d: ctx.deployment }, resource: `deployment=${ctx.deployment}` });
    },
  }) as unknown as AnyCheck;
}

const open: Daemon[] = [];
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aegis-fleet-daemon-'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the limiter: at most total at once, at most perKey for one key, slots handed round robin', async () => {
  const lim = new FairLimiter(3, 2);
  let peak = 0;
  const peakBy = new Map<string, number>();
  const order: string[] = [];
  const gates: (() => void)[] = [];
  const task = (key: string) =>
    lim.run(key, async () => {
      order.push(key);
      peak = Math.max(peak, lim.active());
      peakBy.set(key, Math.max(peakBy.get(key) ?? 0, lim.active(key)));
      await new Promise<void>((r) => gates.push(r));
      return key;
    });
  const all = [...Array.from({ length: 6 }, () => task('a')), task('b'), task('c')];
  await waitFor(() => gates.length === 3, 'three tasks to start');
  // a may use two slots; the third goes to b, not to a's queue.
  expect(order).toEqual(['a', 'a', 'b']);
  expect(lim.waiting()).toBe(5);
  gates.shift()?.();
  await waitFor(() => gates.length === 3, 'the freed slot to be taken');
  expect(order[3]).toBe('c');
  while (gates.length > 0 || lim.active() > 0 || lim.waiting() > 0) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 1));
  }
  expect(await Promise.all(all)).toEqual(['a', 'a', 'a', 'a', 'a', 'a', 'b', 'c']);
  expect(peak).toBe(3);
  expect(peakBy.get('a')).toBe(2);
  // A task that throws frees its slot too.
  await expect(lim.run('a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  expect(lim.active()).toBe(0);
});

test('one daemon audits every deployment of a fleet; a stuck one holds only its share and ends error, a failing one fails alone', async () => {
  const registry = testRegistry(['fleet-a', 'fleet-b', 'fleet-c'].map(fleetCheck));
  // `stuck` holds its checks until their timeout: long enough that the others finish first
  // however loaded the machine (they take 20 ms), which is what is asserted — not how fast.
  const yaml = [
    'fleet: { concurrency: 4, max_per_deployment: 2 }',
    'defaults:',
    '  checks:',
    '    fleet-a: { timeout: 8s }',
    '    fleet-b: { timeout: 8s }',
    '    fleet-c: { timeout: 8s }',
    'deployments:',
    '  - deployment: stuck',
    '  - deployment: good',
    '  - deployment: bad',
    '  - deployment: other',
    '    checks: { fleet-c: { enabled: false } }',
    '',
  ].join('\n');
  const fleet = await parseFleet(yaml, join(dir, 'fleet.yaml'), { registry, env: {} });
  const d = await startDaemon({ fleet, registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0, shutdownDeadlineMs: 5_000 });
  open.push(d);
  expect(d.deployments()).toEqual(['stuck', 'good', 'bad', 'other']);

  // The others finish while every check of `stuck` is still waiting for its timeout.
  await waitFor(() => ['good', 'bad', 'other'].every((n) => d.report(n)?.results.length === (n === 'other' ? 2 : 3)), 'the healthy deployments to finish', 8_000);
  expect(d.report('stuck')).toBeUndefined();
  expect(d.report('good')?.results.map((r) => r.status)).toEqual(['pass', 'pass', 'pass']);
  expect(d.report('bad')?.results.map((r) => r.status)).toEqual(['fail', 'fail', 'fail']);
  expect(d.report('other')?.results.map((r) => r.check)).toEqual(['fleet-a', 'fleet-b']);

  await d.ready;
  expect(d.report('stuck')?.results.map((r) => r.status)).toEqual(['error', 'error', 'error']);
  expect(d.report('stuck')?.results[0].error).toContain('timed out');

  const metrics = (await get(d.address, '/metrics')).body;
  const st = (dep: string, check: string, s: string) => sample(metrics, `aegis_compliance_check_status{deployment="${dep}",check="${check}",check_severity="high",status="${s}"}`);
  expect(st('bad', 'fleet-a', 'fail')).toBe(1);
  expect(st('good', 'fleet-a', 'pass')).toBe(1);
  expect(st('good', 'fleet-a', 'fail')).toBe(0);
  expect(st('stuck', 'fleet-b', 'error')).toBe(1);
  // A disabled check of one deployment has no series there, and keeps its series elsewhere.
  expect(st('other', 'fleet-c', 'pass')).toBeUndefined();
  expect(st('good', 'fleet-c', 'pass')).toBe(1);
  expect(sample(metrics, 'aegis_compliance_findings{deployment="bad",check="fleet-b",check_severity="high"}')).toBe(1);
  expect(sample(metrics, 'aegis_compliance_findings{deployment="good",check="fleet-b",check_severity="high"}')).toBe(0);
  expect(sample(metrics, 'aegis_compliance_runs_total{deployment="stuck",outcome="error"}')).toBe(1);
  expect(sample(metrics, 'aegis_compliance_runs_total{deployment="good",outcome="pass"}')).toBe(1);
  for (const dep of ['stuck', 'good', 'bad', 'other']) expect(sample(metrics, `aegis_compliance_build_info{deployment="${dep}",version="0.1.0"}`)).toBe(1);
  // Every aegis_compliance_* series names its deployment.
  for (const line of metrics.split('\n')) if (line.startsWith('aegis_compliance_')) expect(line).toMatch(/deployment="(stuck|good|bad|other)"/);

  // The index: worst first, each with its failing checks and a link to its report.
  const index = JSON.parse((await get(d.address, '/report.json')).body) as { deployments: { deployment: string; state: string; failing: number; errors: number; link: string }[] };
  expect(index.deployments.map((e) => [e.deployment, e.state, e.failing, e.errors])).toEqual([
    ['bad', 'fail', 3, 0],
    ['stuck', 'error', 0, 3],
    ['good', 'pass', 0, 0],
    ['other', 'pass', 0, 0],
  ]);
  for (const path of ['/', '/report']) {
    const page = await get(d.address, path);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<tr class="deployment" data-deployment="bad" data-state="fail">\s*<td><a href="bad\/report">bad<\/a><\/td>/);
  }
  const bad = await get(d.address, '/bad/report');
  expect(bad.status).toBe(200);
  expect(JSON.parse(bad.body)).toMatchObject({ deployment: 'bad', summary: { fail: 3 } });
  expect(JSON.parse((await get(d.address, '/good/report.json')).body)).toMatchObject({ deployment: 'good', summary: { pass: 3 } });
  expect((await get(d.address, '/nope/report')).status).toBe(404);
  expect((await get(d.address, '/..%2F/report')).status).toBe(404);

  // "Run check C of deployment D now": one call, one deployment, one check.
  const r = await d.runChecks('good', ['fleet-b']);
  expect(r?.deployment).toBe('good');
  expect(r?.results.map((x) => x.check)).toEqual(['fleet-b']);
  expect(await d.runChecks('nope', ['fleet-b'])).toBeUndefined();
  const after = (await get(d.address, '/metrics')).body;
  expect(sample(after, 'aegis_compliance_runs_total{deployment="good",outcome="pass"}')).toBe(2);
  expect(sample(after, 'aegis_compliance_runs_total{deployment="bad",outcome="fail"}')).toBe(1);
});
