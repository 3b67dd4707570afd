/**
 * A long pass reports its progress: the check's ctx.progress reaches the runner's onProgress
 * (and a last `finished` report), the CLI shows it as log lines every few seconds (or a
 * progress line on a terminal), and the daemon exports a counter and a ratio while it runs.
 */
import { Writable } from 'node:stream';
import check from '../../checks/receipt-chain';
import { progressReporter } from '../../src/app/progress';
import { createLogger } from '../../src/core/logger';
import { runCheck, type CheckProgress } from '../../src/core/runner';
import { Fingerprinter, KnownSecrets } from '../../src/core/secret';
import { ComplianceMetrics } from '../../src/outputs/metrics';
import { silentLogger } from '../../src/core/logger';
import { AuditLogBuilder, FakeAuditDb, FakeSecretStore, MemoryStateStore, TestKey } from '../fakes';

function sink(): { stream: Writable & { isTTY?: boolean; columns?: number }; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number; cursorTo?: unknown; clearLine?: unknown; moveCursor?: unknown };
  return { stream, text: () => out };
}

test('receipt-chain reports its progress as it verifies: rows so far of the rows ahead, then finished', async () => {
  const receipt = TestKey.generate();
  const root = TestKey.generate();
  const b = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(1200);
  b.root();
  const seen: CheckProgress[] = [];
  const result = await runCheck(
    { check, options: check.options.parse({ batchSize: 300 }), timeoutMs: 30_000 },
    {
      deployment: 'test',
      services: [],
      sources: { postgres: new FakeAuditDb(b.snapshot()), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), root.holder('root')] }) },
      state: new MemoryStateStore(),
      fingerprinter: new Fingerprinter(),
      knownSecrets: new KnownSecrets(),
      logger: silentLogger(),
      onProgress: (id, p) => {
        expect(id).toBe('receipt-chain');
        seen.push({ ...p });
      },
    },
  );
  expect(result.status).toBe('pass');
  const running = seen.filter((p) => !p.finished);
  expect(running.length).toBeGreaterThanOrEqual(4);
  expect(running.map((p) => p.done)).toEqual([...running.map((p) => p.done)].sort((x, y) => x - y));
  expect(running[0].total).toBe(1200);
  expect(running[running.length - 1].done).toBe(1200);
  expect(seen[seen.length - 1]).toMatchObject({ done: 1200, finished: true });
});

test('without a terminal: a log line every interval, with rows, rows/s and the time left; nothing for a short run', () => {
  const out = sink();
  let t = 1_000_000;
  const r = progressReporter({ logger: createLogger({ destination: out.stream }), intervalMs: 5_000, now: () => t });
  const startedMs = t;
  r.onProgress('receipt-chain', { done: 0, total: 100_000, startedMs });
  t += 1_000;
  r.onProgress('receipt-chain', { done: 10_000, total: 100_000, startedMs });
  expect(out.text()).toBe('');
  t += 4_000;
  r.onProgress('receipt-chain', { done: 50_000, total: 100_000, startedMs });
  const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ check: 'receipt-chain', rows: 50_000, totalRows: 100_000, rowsPerSecond: 10_000, etaSeconds: 5 });
  expect(lines[0].msg).toBe('Progress: 50 000 of 100 000 rows, 10 000 rows/s, about 5 s left');
  r.onProgress('receipt-chain', { done: 100_000, total: 100_000, startedMs, finished: true });
  r.stop();
  expect(out.text().trim().split('\n')).toHaveLength(1);
});

test('on a terminal: a progress line with rows, rows/s and ETA on the stream given', () => {
  const out = sink();
  out.stream.isTTY = true;
  out.stream.columns = 120;
  Object.assign(out.stream, { cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  let t = 0;
  const r = progressReporter({ tty: out.stream as unknown as NodeJS.WriteStream, logger: silentLogger(), now: () => t });
  r.onProgress('receipt-chain', { done: 0, total: 1000, startedMs: 0 });
  t = 2_000;
  r.onProgress('receipt-chain', { done: 500, total: 1000, startedMs: 0 });
  r.stop();
  expect(out.text()).toMatch(/receipt-chain \[.*\] 500\/1 000 rows \| 250 rows\/s \| ETA 2 s/);
});

test('the daemon exports rows processed (a counter) and how far the running pass has come (a ratio)', async () => {
  const m = new ComplianceMetrics();
  m.setPlan('prod', [{ id: 'receipt-chain', severity: 'critical', sources: ['postgres'] }]);
  m.progress('prod', 'receipt-chain', { done: 2_000, total: 10_000, startedMs: 1 });
  let body = (await m.render()).body;
  expect(body).toMatch(/^aegis_compliance_check_rows_processed_total\{deployment="prod",check="receipt-chain"\} 2000$/m);
  expect(body).toMatch(/^aegis_compliance_check_progress_ratio\{deployment="prod",check="receipt-chain"\} 0\.2$/m);
  m.progress('prod', 'receipt-chain', { done: 10_000, total: 10_000, startedMs: 1, finished: true });
  // The next run starts from 0 again; the counter keeps counting.
  m.progress('prod', 'receipt-chain', { done: 500, total: 1_000, startedMs: 2 });
  body = (await m.render()).body;
  expect(body).toMatch(/^aegis_compliance_check_rows_processed_total\{deployment="prod",check="receipt-chain"\} 10500$/m);
  expect(body).toMatch(/^aegis_compliance_check_progress_ratio\{deployment="prod",check="receipt-chain"\} 0\.5$/m);
  // Another deployment's series are its own.
  m.setPlan('staging', [{ id: 'receipt-chain', severity: 'critical', sources: ['postgres'] }]);
  m.progress('staging', 'receipt-chain', { done: 7, startedMs: 3 });
  body = (await m.render()).body;
  expect(body).toMatch(/^aegis_compliance_check_rows_processed_total\{deployment="staging",check="receipt-chain"\} 7$/m);
  expect(body).toMatch(/^aegis_compliance_check_rows_processed_total\{deployment="prod",check="receipt-chain"\} 10500$/m);
  // A check that left the plan leaves both.
  m.setPlan('prod', []);
  body = (await m.render()).body;
  expect(body).not.toMatch(/deployment="prod",check="receipt-chain"/);
});
