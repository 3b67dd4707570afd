import { z } from 'zod';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { runChecks, runCheck, type RunEnvironment } from '../../src/core/runner';
import { sourceUnavailable } from '../../src/core/errors';
import { Fingerprinter, KnownSecrets } from '../../src/core/secret';
import { silentLogger } from '../../src/core/logger';
import { findingId } from '../../src/core/finding';
import type { Sources } from '../../src/core/sources';
import { FakeLogSource } from '../fakes/log-source';
import { exitCodeFor, buildReport } from '../../src/core/report';

const meta = {
  title: 'Something holds for the test deployment',
  description: 'A check used by the runner tests.',
  severity: 'high' as const,
  schedule: '*/5 * * * *',
  checklist: [],
  runbook: 'docs/runbooks/x.md',
  remediation: 'Fix the thing.',
};

function check(id: string, run: AnyCheck['run'], sources: AnyCheck['meta']['sources'] = []): AnyCheck {
  return defineCheck({
    meta: { ...meta, id, sources },
    messages: { bad: 'Resource {{name}} is bad.', note: 'Just a note about {{name}}.' },
    options: z.object({ limit: z.number().default(3) }),
    run,
  }) as unknown as AnyCheck;
}

const fakeLogs = new FakeLogSource({});

function env(sources: Sources = {}, extra: Partial<RunEnvironment> = {}): RunEnvironment {
  return {
    deployment: 'test',
    services: ['a', 'b'],
    sources,
    state: { get: async () => undefined, read: async () => ({ status: 'absent' }), set: async () => undefined },
    fingerprinter: new Fingerprinter(),
    knownSecrets: new KnownSecrets(),
    logger: silentLogger(),
    ...extra,
  };
}

test('a finding fails the check; message placeholders are filled; ids are stable', async () => {
  const c = check('one', async (ctx) => ctx.report({ messageId: 'bad', data: { name: 'gw' }, resource: 'service=gw' }));
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env());
  expect(r.status).toBe('fail');
  expect(r.findings[0]).toMatchObject({ message: 'Resource gw is bad.', severity: 'high', resource: 'service=gw', id: findingId('one', 'service=gw') });
  expect(r.findings[0].remediation).toBe('Fix the thing.');
});

test('info findings are notes: the check still passes', async () => {
  const c = check('two', async (ctx) => ctx.report({ messageId: 'note', data: { name: 'x' }, resource: 'x=1', severity: 'info' }));
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env());
  expect(r.status).toBe('pass');
  expect(r.findings).toHaveLength(1);
});

test('a source that is not configured makes the check skipped with the reason, never pass', async () => {
  const c = check('three', async () => undefined, ['postgres']);
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env());
  expect(r.status).toBe('skipped');
  expect(r.error).toMatch(/postgres.*not configured/);
  const alt = check('four', async () => undefined, [['logs', 'prometheus']]);
  expect((await runCheck({ check: alt, options: {}, timeoutMs: 1000 }, env())).error).toMatch(/none of the sources 'logs', 'prometheus'/);
  expect((await runCheck({ check: alt, options: {}, timeoutMs: 1000 }, env({ logs: fakeLogs }))).status).toBe('pass');
});

test('a failing source makes the check error, naming the source, and records the source error', async () => {
  const c = check('five', async () => {
    throw sourceUnavailable('postgres', 'connection_refused', 'connecting: connection refused');
  });
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env());
  expect(r.status).toBe('error');
  expect(r.error).toBe('postgres: connecting: connection refused');
  expect(r.sourceErrors).toEqual([{ source: 'postgres', reason: 'connection_refused' }]);
});

test('a check that hangs errors at its timeout and its signal is aborted', async () => {
  let aborted = false;
  const c = check('six', (ctx) => new Promise<void>(() => ctx.signal.addEventListener('abort', () => (aborted = true))));
  const r = await runCheck({ check: c, options: {}, timeoutMs: 50 }, env());
  expect(r.status).toBe('error');
  expect(r.error).toMatch(/timed out after 50 ms/);
  expect(aborted).toBe(true);
});

test('a check still running after its timeout cannot change its error result', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let lateReport: unknown;
  const c = check('late', async (ctx) => {
    ctx.report({ messageId: 'bad', data: { name: 'early' }, resource: 'name=early' });
    await gate;
    try {
      ctx.report({ messageId: 'bad', data: { name: 'late' }, resource: 'name=late' });
    } catch (e) {
      lateReport = e;
    }
  });
  const r = await runCheck({ check: c, options: {}, timeoutMs: 30 }, env());
  expect(r.status).toBe('error');
  expect(r.findings.map((f) => f.resource)).toEqual(['name=early']);
  release();
  await new Promise((res) => setTimeout(res, 10));
  // Findings from the abandoned run (computed from a read cut short) do not reach the report.
  expect(r.findings.map((f) => f.resource)).toEqual(['name=early']);
  expect(lateReport).toBeInstanceOf(Error);
});

test('a crashing check errors without taking the others down, and its message is scrubbed', async () => {
  const known = new KnownSecrets();
  known.add('the-secret-value-123');
  const bad = check('seven', async () => {
    throw new Error('boom with the-secret-value-123 inside');
  });
  const good = check('eight', async () => undefined);
  const rs = await runChecks(
    [
      { check: bad, options: {}, timeoutMs: 1000 },
      { check: good, options: {}, timeoutMs: 1000 },
    ],
    env({}, { knownSecrets: known }),
  );
  expect(rs.map((r) => r.status)).toEqual(['error', 'pass']);
  expect(rs[0].error).toMatch(/^check crashed: boom with \[redacted\] inside$/);
});

test('reporting an unknown message id is an error, not a silent pass', async () => {
  const c = check('nine', async (ctx) => ctx.report({ messageId: 'nope' as 'bad', resource: 'r=1' }));
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env());
  expect(r.status).toBe('error');
  expect(r.error).toMatch(/unknown messageId nope/);
});

test('waived findings stay visible, do not fail the check, and an expired waiver covers nothing', async () => {
  const c = check('ten', async (ctx) => {
    ctx.report({ messageId: 'bad', data: { name: 'a' }, resource: 'service=a' });
  });
  const waiver = { check: 'ten', resource: 'service=*', justification: 'j', approver: 'sec-lead', ticket: 'SEC-1', expires: '2999-01-01' };
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env({}, { waivers: [waiver] }));
  expect(r.status).toBe('pass');
  expect(r.findings[0].waived).toEqual(waiver);
  const expired = { ...waiver, expires: '2000-01-01' };
  const r2 = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env({}, { waivers: [expired] }));
  expect(r2.status).toBe('fail');
});

test('concurrency is bounded and results keep the given order', async () => {
  let running = 0;
  let peak = 0;
  const mk = (i: number) =>
    check(`c${i}`, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    });
  const planned = Array.from({ length: 9 }, (_, i) => ({ check: mk(i), options: {}, timeoutMs: 1000 }));
  const rs = await runChecks(planned, env({}, { concurrency: 3 }));
  expect(peak).toBe(3);
  expect(rs.map((r) => r.check)).toEqual(planned.map((p) => p.check.meta.id));
});

test('exit codes: findings at or above --fail-on → 1, error and nothing failed → 3, else 0', async () => {
  const failing = await runCheck({ check: check('f', async (ctx) => ctx.report({ messageId: 'bad', resource: 'r=1', severity: 'medium' })), options: {}, timeoutMs: 1000 }, env());
  const erroring = await runCheck({ check: check('e', async () => { throw sourceUnavailable('logs', 'timeout', 'x'); }), options: {}, timeoutMs: 1000 }, env());
  const passing = await runCheck({ check: check('p', async () => undefined), options: {}, timeoutMs: 1000 }, env());
  const report = (results: typeof failing[]) =>
    buildReport({ deployment: 'd', runId: 'r', configDigest: 'x', startedAt: new Date(), finishedAt: new Date(), results });
  expect(exitCodeFor(report([failing, erroring, passing]), 'low')).toBe(1);
  expect(exitCodeFor(report([failing, erroring, passing]), 'high')).toBe(3);
  expect(exitCodeFor(report([failing, passing]), 'critical')).toBe(0);
  expect(exitCodeFor(report([passing]), 'info')).toBe(0);
});

test("our own source errors keep their words: 'secrets: reading env file' is not mistaken for a secret pair", async () => {
  const c = check('eleven', async () => {
    throw sourceUnavailable('secrets', 'not_found', 'reading env file /run/aegis/api.env: not found');
  });
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env());
  expect(r.error).toBe('secrets: reading env file /run/aegis/api.env: not found');
});

test('evidence is scrubbed value by value: a known secret that includes quotes cannot break it', async () => {
  const known = new KnownSecrets();
  // A JSON list read from Vault is one known value, quotes and all.
  known.add('["client-alpha","aud-probe-7c1e"]');
  const c = check('ten', async (ctx) => ctx.report({ messageId: 'bad', resource: 'r=1', evidence: { subjectCn: 'aud-probe-7c1e', nested: [{ cn: 'client-alpha' }], n: 3 } }));
  const r = await runCheck({ check: c, options: {}, timeoutMs: 1000 }, env({}, { knownSecrets: known }));
  expect({ status: r.status, error: r.error }).toEqual({ status: 'fail', error: null });
  expect(r.findings[0].evidence).toEqual({ subjectCn: '[redacted]', nested: [{ cn: '[redacted]' }], n: 3 });
});
