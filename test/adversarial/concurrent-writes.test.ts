/**
 * Issue 9, case 4: concurrent report writes collided. Every writer used `${file}.${pid}.tmp`,
 * so two writes of one file in one process shared a temporary file: with 30-second schedules
 * the daemon logged "Writing reports failed" (ENOENT on rename) 4 times in 9 minutes, and the
 * same race could publish half of one report over another. Writes now go through one
 * atomic-write helper (a unique temporary name in the target folder, fsync, rename), and
 * the writes of one output folder are serialised, so the five files always come from one run.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryHistoryStore, writeOutputs } from '../../src/outputs';
import { FileStateStore } from '../../src/sources/state';
import { sampleMetas, sampleReport } from '../outputs/fixtures';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'adv-writes-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const leftovers = (d: string) => readdirSync(d).filter((n) => n.includes('.tmp'));

test('ten runs writing one output folder at once: no failure, no temporary file left, the five files from one run', async () => {
  const reports = Array.from({ length: 10 }, (_, i) => sampleReport({ runId: `run-${String(i).padStart(2, '0')}` }));
  let reading = true;
  const torn: string[] = [];
  let reads = 0;
  // A reader (Prometheus' file scraper, /report) must never see half a file.
  const reader = (async () => {
    while (reading) {
      const f = join(dir, 'report.json');
      if (existsSync(f)) {
        reads++;
        try {
          JSON.parse(readFileSync(f, 'utf8'));
        } catch (e) {
          torn.push((e as Error).message);
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  const outcomes = await Promise.allSettled(reports.map((r) => writeOutputs(r, { dir, metas: sampleMetas() })));
  reading = false;
  await reader;
  expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
  expect(torn).toEqual([]);
  expect(reads).toBeGreaterThan(0);
  expect(leftovers(dir)).toEqual([]);
  // The files agree: all five are the same run's.
  const runId = (JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { runId: string }).runId;
  for (const f of ['report.html', 'checklist.html', 'report.junit.xml', 'report.sarif']) {
    expect({ f, sameRun: readFileSync(join(dir, f), 'utf8').includes(runId) }).toEqual({ f, sameRun: true });
  }
}, 120_000);

test('history saved by concurrent runs: every report kept whole, no temporary file left', async () => {
  const store = new DirectoryHistoryStore(join(dir, 'history'), 100);
  const stamp = '2026-11-22T10:00:00.000Z';
  // Same finishing time: the file names differ only by run id.
  const reports = Array.from({ length: 20 }, (_, i) => sampleReport({ runId: `run-${i}`, finishedAt: stamp }));
  const outcomes = await Promise.allSettled([...reports, ...reports].map((r) => store.save(r)));
  expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
  const folder = join(dir, 'history', reports[0].deployment);
  expect(leftovers(folder)).toEqual([]);
  const files = readdirSync(folder);
  // Each report, and beside it its per-severity counts (the trend chart reads those).
  expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(20);
  expect(files.filter((f) => f.endsWith('.json.counts')).sort()).toEqual(files.filter((f) => f.endsWith('.json')).map((f) => `${f}.counts`).sort());
  for (const f of files) JSON.parse(readFileSync(join(folder, f), 'utf8'));
});

test('checkpoints written by concurrent runs: no failure, no temporary file left', async () => {
  const state = new FileStateStore(join(dir, 'state'));
  const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => state.set('receipt-chain:x', { upTo: i, pad: 'x'.repeat(100_000) })));
  expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
  expect(leftovers(join(dir, 'state'))).toEqual([]);
  expect(((await state.get<{ upTo: number }>('receipt-chain:x')) as { upTo: number }).upTo).toBeGreaterThanOrEqual(0);
});
