import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/daemon';
import { parseListen } from '../../src/daemon/server';
import { silentLogger } from '../../src/core/logger';
import { sourceUnavailable } from '../../src/core/errors';
import { config, get, sample, stubCheck, testRegistry, waitFor } from './helpers';
import { metasFromChecks, writeOutputs } from '../../src/outputs';

const open: Daemon[] = [];
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aegis-daemon-'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const status = (check: string, sev: string, st: string) =>
  `aegis_compliance_check_status{check="${check}",check_severity="${sev}",status="${st}"}`;

describe('daemon', () => {
  test('first cycle, readiness, metrics, merged report, HTML report when written', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const registry = testRegistry([
      stubCheck('slow-gate', async () => gate),
      stubCheck('always-fails', async ({ report, measure }) => {
        report('a');
        report('b');
        measure('widgets_seen', 7);
      }, { severity: 'high' }),
    ]);
    const html = join(dir, 'report.html');
    const d = await startDaemon({ loaded: config('deployment: t1\n', registry), registry, listen: '127.0.0.1:0', logger: silentLogger(), htmlReportPath: html });
    open.push(d);
    expect(d.address).toMatch(/^127\.0\.0\.1:\d+$/);

    expect((await get(d.address, '/healthz')).status).toBe(200);
    const notReady = await get(d.address, '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('first cycle');
    // Before its result: every series of the check exists, all statuses 0. A check of the first
    // cycle that finished is exported at once, while the slowest still runs (its alert need not
    // wait for the cycle); the run is counted when it ends.
    const failing = await waitFor(async () => {
      const body = (await get(d.address, '/metrics')).body;
      return sample(body, status('always-fails', 'high', 'fail')) === 1 && body;
    }, 'the finished check to be exported while the first cycle runs');
    for (const st of ['pass', 'fail', 'error', 'skipped']) expect(sample(failing, status('slow-gate', 'critical', st))).toBe(0);
    expect(sample(failing, 'aegis_compliance_findings{check="always-fails",check_severity="high"}')).toBe(2);
    expect(sample(failing, 'aegis_compliance_runs_total{outcome="fail"}') ?? 0).toBe(0);
    expect((await get(d.address, '/readyz')).status).toBe(503);
    expect((await get(d.address, '/report.json')).status).toBe(503);

    release();
    await d.ready;
    const ready = await get(d.address, '/readyz');
    expect(ready.status).toBe(200);
    const m = await get(d.address, '/metrics');
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(m.body, status('slow-gate', 'critical', 'pass'))).toBe(1);
    expect(sample(m.body, status('always-fails', 'high', 'fail'))).toBe(1);
    expect(sample(m.body, 'aegis_compliance_findings{check="always-fails",check_severity="high"}')).toBe(2);
    expect(sample(m.body, 'aegis_compliance_widgets_seen{check="always-fails"}')).toBe(7);
    expect(sample(m.body, 'aegis_compliance_leader')).toBe(1);
    expect(sample(m.body, 'aegis_compliance_runs_total{outcome="fail"}')).toBe(1);
    expect(sample(m.body, 'aegis_compliance_last_cycle_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);

    const om = await get(d.address, '/metrics', { accept: 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5' });
    expect(om.headers['content-type']).toMatch(/^application\/openmetrics-text/);
    expect(om.body.endsWith('# EOF\n')).toBe(true);

    // Run one check again: the merged report keeps the latest result of each check.
    const partial = await d.runNow(['always-fails']);
    expect(partial?.results.map((r) => r.check)).toEqual(['always-fails']);
    const merged = JSON.parse((await get(d.address, '/report.json')).body) as { results: { check: string; status: string }[]; summary: Record<string, number> };
    expect(merged.results.map((r) => [r.check, r.status])).toEqual([['always-fails', 'fail'], ['slow-gate', 'pass']]);
    expect(merged.summary).toEqual({ pass: 1, fail: 1, error: 0, skipped: 0 });

    const asJson = await get(d.address, '/report');
    expect(asJson.headers['content-type']).toMatch(/^application\/json/);
    writeFileSync(html, '<!doctype html><title>report</title><p>the latest report</p>');
    const asHtml = await get(d.address, '/report');
    expect(asHtml.headers['content-type']).toMatch(/^text\/html/);
    expect(asHtml.body).toContain('the latest report');
    expect((await get(d.address, '/nope')).status).toBe(404);
  });

  test("the report's runbook links work from /report too: each check's runbook is served by its file name, nothing else is", async () => {
    const registry = testRegistry([stubCheck('receipt-chain', async ({ report }) => report('row-1')), stubCheck('historical-keys', async () => undefined)]);
    const outDir = join(dir, 'runbook-links');
    const d = await startDaemon({
      loaded: config('deployment: t-runbooks\n', registry),
      registry,
      listen: '127.0.0.1:0',
      logger: silentLogger(),
      htmlReportPath: join(outDir, 'report.html'),
      onReport: async (_r, merged) => {
        await writeOutputs(merged, { dir: outDir, formats: ['html'], metas: metasFromChecks(registry.values()) });
      },
    });
    open.push(d);
    await d.ready;
    await waitFor(async () => String((await get(d.address, '/report')).headers['content-type']).startsWith('text/html'), 'the HTML report');
    const page = (await get(d.address, '/report')).body;
    // The links the written file carries (relative to its folder), as a browser resolves them against /report.
    const hrefs = [...page.matchAll(/href="([^"#]*runbooks\/[^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, '&'));
    expect(hrefs.length).toBeGreaterThanOrEqual(2);
    for (const href of hrefs) {
      const url = new URL(href, `http://${d.address}/report`);
      const r = await get(d.address, url.pathname);
      expect({ href, status: r.status, type: r.headers['content-type'], nosniff: r.headers['x-content-type-options'] }).toEqual({ href, status: 200, type: 'text/plain; charset=utf-8', nosniff: 'nosniff' });
      expect(r.body).toMatch(/^# (receipt-chain|historical-keys)\b/);
    }
    // Only the checks' runbooks: not another runbook, not a file beside them, not a path out.
    for (const p of ['/docs/runbooks/signing-key-source.md', '/docs/runbooks/../../package.json', '/package.json', '/README.md', '/%2e%2e/README.md']) {
      expect({ p, status: (await get(d.address, p)).status }).toEqual({ p, status: 404 });
    }
  });

  test('each check on its own schedule (config overrides meta), never overlapping itself', async () => {
    let running = 0;
    let maxRunning = 0;
    let slowRuns = 0;
    let fastRuns = 0;
    const registry = testRegistry([
      stubCheck('slow-every-second', async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        slowRuns++;
        await new Promise((r) => setTimeout(r, 1_600));
        running--;
      }, { schedule: '* * * * * *' }),
      // meta says once a year; config says every second
      stubCheck('fast-by-config', async () => void fastRuns++),
    ]);
    const loaded = config('deployment: t2\nchecks:\n  fast-by-config: { schedule: "* * * * * *" }\n', registry);
    const d = await startDaemon({ loaded, registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
    open.push(d);
    await waitFor(() => fastRuns >= 4 && slowRuns >= 2, () => `scheduled runs (fast ${fastRuns} of 4, slow ${slowRuns} of 2)`, 30_000);
    expect(maxRunning).toBe(1);
    await d.close();
    const after = fastRuns;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(fastRuns).toBe(after); // schedules stopped
  });

  test('a result exported when its check finished is counted once with its run; an audit that does not publish results is exported at its end', async () => {
    const registry = testRegistry([
      stubCheck('source-fails', async () => {
        throw sourceUnavailable('logs', 'connection_refused', 'connect ECONNREFUSED');
      }),
      stubCheck('passes', async () => undefined, { severity: 'low' }),
    ]);
    const d = await startDaemon({ loaded: config('deployment: t5\n', registry), registry, listen: '127.0.0.1:0', logger: silentLogger() });
    open.push(d);
    await d.ready;
    let m = (await get(d.address, '/metrics')).body;
    expect(sample(m, 'aegis_compliance_source_errors_total{source="logs",reason="connection_refused"}')).toBe(1);
    expect(sample(m, status('source-fails', 'critical', 'error'))).toBe(1);
    expect(sample(m, 'aegis_compliance_runs_total{outcome="error"}')).toBe(1);
    await d.runNow(['source-fails']);
    m = (await get(d.address, '/metrics')).body;
    expect(sample(m, 'aegis_compliance_source_errors_total{source="logs",reason="connection_refused"}')).toBe(2);
    expect(sample(m, 'aegis_compliance_runs_total{outcome="error"}')).toBe(2);

    // an audit function that never calls onResult (a wrapper) still gets its results exported
    const quiet = await startDaemon({
      loaded: config('deployment: t6\n', registry),
      registry,
      listen: '127.0.0.1:0',
      logger: silentLogger(),
      audit: async (loaded, reg, opts) => {
        const { runAudit } = await import('../../src/app/audit');
        return runAudit(loaded, reg, { ...opts, onResult: undefined });
      },
    });
    open.push(quiet);
    await quiet.ready;
    m = (await get(quiet.address, '/metrics')).body;
    expect(sample(m, status('passes', 'low', 'pass'))).toBe(1);
    expect(sample(m, 'aegis_compliance_source_errors_total{source="logs",reason="connection_refused"}')).toBe(1);
  });

  test('crashing checks and a crashing run become error results; the daemon stays up', async () => {
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    try {
      const registry = testRegistry([
        stubCheck('throws', async () => {
          throw new TypeError('cannot read properties of undefined');
        }, { schedule: '* * * * * *' }),
        stubCheck('fine', async () => undefined, { severity: 'low' }),
      ]);
      let calls = 0;
      const d = await startDaemon({
        loaded: config('deployment: t3\n', registry),
        registry,
        listen: '127.0.0.1:0',
        logger: silentLogger(),
        maxRandomDelayMs: 0,
        // Every other run the whole pipeline throws (as if sources could not be created).
        audit: async (loaded, reg, opts) => {
          if (++calls % 2 === 0) throw new Error('state store unreachable');
          const { runAudit } = await import('../../src/app/audit');
          return runAudit(loaded, reg, opts);
        },
      });
      open.push(d);
      await d.ready;
      let m = (await get(d.address, '/metrics')).body;
      expect(sample(m, status('throws', 'critical', 'error'))).toBe(1);
      expect(sample(m, status('fine', 'low', 'pass'))).toBe(1);
      const failed = await d.runNow(['fine']); // call 2: the pipeline throws
      expect(failed?.results[0]).toMatchObject({ check: 'fine', status: 'error' });
      expect(failed?.results[0].error).toContain('state store unreachable');
      m = (await get(d.address, '/metrics')).body;
      expect(sample(m, status('fine', 'low', 'error'))).toBe(1);
      expect(sample(m, status('fine', 'low', 'pass'))).toBe(0);
      await waitFor(() => calls >= 5, () => `scheduled runs of the crashing check (${calls} of 5)`, 30_000);
      expect((await get(d.address, '/healthz')).status).toBe(200);
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });

  test('graceful shutdown waits for a running check up to the deadline, then closes the server', async () => {
    // What is asserted is the order of events; how fast shutdown is, is bench/daemon.ts's
    // figure (bounds here are generous, for a loaded machine).
    let finished = false;
    const registry = testRegistry([
      stubCheck('takes-800ms', async () => {
        await new Promise((r) => setTimeout(r, 800));
        finished = true;
      }),
    ]);
    const d = await startDaemon({ loaded: config('deployment: t4\n', registry), registry, listen: '127.0.0.1:0', logger: silentLogger(), shutdownDeadlineMs: 30_000 });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await d.close();
    expect(finished).toBe(true); // it waited for the running check…
    expect(Date.now() - t0).toBeLessThan(30_000); // …and not for the deadline
    await expect(get(d.address, '/healthz')).rejects.toThrow(/ECONNREFUSED/);

    // A check that outlives the deadline does not hold shutdown hostage.
    let stuckDone = false;
    const stuck = testRegistry([
      stubCheck('stuck', async () => {
        await new Promise((r) => setTimeout(r, 4_000));
        stuckDone = true;
      }),
    ]);
    const d2 = await startDaemon({ loaded: config('deployment: t5\nchecks: { stuck: { timeout: 5s } }\n', stuck), registry: stuck, listen: '127.0.0.1:0', logger: silentLogger(), shutdownDeadlineMs: 300 });
    await new Promise((r) => setTimeout(r, 50));
    await d2.close();
    expect(stuckDone).toBe(false); // close() returned at the deadline, before the check ended
    await expect(get(d2.address, '/healthz')).rejects.toThrow(/ECONNREFUSED/);
    // let the stuck check's timer drain so jest sees no open handle
    await new Promise((r) => setTimeout(r, 4_100));
  });

  test('SIGTERM closes the daemon and exits 0', async () => {
    const exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      const registry = testRegistry([stubCheck('quick', async () => undefined)]);
      const d = await startDaemon({ loaded: config('deployment: t6\n', registry), registry, listen: '127.0.0.1:0', logger: silentLogger(), handleSignals: true });
      await d.ready;
      process.emit('SIGTERM');
      await waitFor(() => exit.mock.calls.length > 0, 'process.exit', 20_000);
      expect(exit).toHaveBeenCalledWith(0);
      await expect(get(d.address, '/healthz')).rejects.toThrow(/ECONNREFUSED/);
      expect(process.listenerCount('SIGTERM')).toBe(0);
    } finally {
      exit.mockRestore();
    }
  });

  test('listen addresses', () => {
    expect(parseListen('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListen(':9464')).toEqual({ host: undefined, port: 9464 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(() => parseListen('nope')).toThrow(/host:port/);
  });
});
