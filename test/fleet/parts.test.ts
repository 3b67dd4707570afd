/**
 * The parts queue (src/fleet/parts.ts) on a real Postgres: a pass planned twice is one set of
 * jobs, a part's result is stored once, and a part whose job failed every retry is queued
 * again when its pass is submitted again.
 */
import { PartsQueue } from '../../src/fleet/parts';
import { silentLogger } from '../../src/core/logger';
import { createTestDatabase } from '../helpers/pg';
import { waitFor } from '../daemon/helpers';

let db: { url: string; drop: () => Promise<void> };
let q: PartsQueue;

beforeAll(async () => {
  db = await createTestDatabase('parts');
  q = new PartsQueue({ url: db.url, schema: 'aegis_parts', replica: 'r1', concurrency: 1, retryLimit: 0, retryDelayMs: 1000, maintenanceIntervalMs: 1000, logger: silentLogger(), pollIntervalMs: 500 });
});

afterAll(async () => {
  await q?.close(1000);
  await db?.drop();
});

test('parts run once each, failed ones are queued again on the next submit', async () => {
  const job = { deployment: 'd', check: 'c', pass: 'p1' };
  const parts = [0, 1, 2].map((index) => ({ index, data: { n: index } }));
  await q.submit(job, parts, 30_000);
  await q.submit(job, parts, 30_000);
  let failing = true;
  const ran: number[] = [];
  await q.work(async (j) => {
    ran.push(j.index);
    if (j.index === 1 && failing) throw new Error('source down');
    return { double: (j.data.n as number) * 2 };
  });
  await waitFor(async () => (await q.parts('p1')).filter((p) => p.done).length === 2, 'two parts done', 30_000);
  // Part 1 failed its only try: no job left for it; it stays not done.
  await waitFor(async () => ran.filter((i) => i === 1).length === 1, 'part 1 tried', 30_000);
  await new Promise((r) => setTimeout(r, 1500));
  expect((await q.parts('p1')).find((p) => p.index === 1)?.done).toBe(false);
  failing = false;
  await q.submit(job, parts, 30_000);
  const done = await waitFor(async () => {
    const all = await q.parts('p1');
    return all.every((p) => p.done) ? all : undefined;
  }, 'every part done', 30_000);
  expect(done.map((p) => [p.index, p.result, p.replica])).toEqual([
    [0, { double: 0 }, 'r1'],
    [1, { double: 2 }, 'r1'],
    [2, { double: 4 }, 'r1'],
  ]);
  // Parts 0 and 2 ran once each however often the pass was submitted.
  expect(ran.filter((i) => i !== 1).sort()).toEqual([0, 2]);
  expect(done.find((p) => p.index === 1)?.attempts).toBe(2);
}, 90_000);
