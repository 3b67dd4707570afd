/**
 * receipt-chain coordinating a pass cut into ranges (ctx.shared, as the daemon gives it with
 * `queue:`): the checkpoint advances only over the contiguous prefix of completed ranges, a
 * run that ends before every range is joined says how far it came and never passes, and the
 * assembled pass finds what one process finds.
 */
import check from '../../checks/receipt-chain';
import type { PartContext, SharedWork } from '../../src/core/define-check';
import { runCheck } from '../../src/core/runner';
import { Fingerprinter, KnownSecrets } from '../../src/core/secret';
import { silentLogger } from '../../src/core/logger';
import type { Sources } from '../../src/core/sources';
import type { CheckResult } from '../../src/core/types';
import { AuditLogBuilder, FakeAuditDb, FakeSecretStore, MemoryStateStore, TestKey } from '../fakes';

const receipt = TestKey.generate();
const root = TestKey.generate();
const options = check.options.parse({ range_rows: 200, threads: 0 });

function sourcesOf(): Sources {
  const b = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(300);
  b.root();
  b.receipts(300);
  b.root();
  const s = b.snapshot();
  // The first row of the second range altered.
  s.rows = s.rows.map((r) => (r.id === 201 ? { ...r, payload: { forged: true } } : r));
  return { postgres: new FakeAuditDb(s), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), root.holder('root')] }) };
}

/** The queue as the coordinator sees it: parts planned, and run (through JSON, as stored) only when the test says so. */
class Parts implements SharedWork {
  planned = new Map<string, Map<number, Record<string, unknown>>>();
  done = new Map<string, Map<number, unknown>>();
  submits = 0;
  /** The indexes of each submit. */
  asked: number[][] = [];
  constructor(private readonly sources: Sources) {}
  async submit(pass: string, parts: readonly { index: number; data: Record<string, unknown> }[]): Promise<void> {
    this.submits++;
    this.asked.push(parts.map((p) => p.index));
    if (!this.planned.has(pass)) this.planned.set(pass, new Map(parts.map((p) => [p.index, p.data])));
  }
  async results(pass: string): Promise<Map<number, unknown>> {
    return new Map(this.done.get(pass) ?? []);
  }
  /** Verifies these parts of every planned pass, as a replica would. */
  async run(indexes: number[]): Promise<void> {
    for (const [pass, parts] of this.planned) {
      for (const i of indexes) {
        const ctx: PartContext<typeof options> = {
          checkId: check.meta.id,
          deployment: 'test',
          options,
          sources: this.sources,
          logger: silentLogger(),
          signal: new AbortController().signal,
          source: (name) => this.sources[name] as never,
        };
        const result = JSON.parse(JSON.stringify(await check.part?.(ctx, parts.get(i) as Record<string, unknown>)));
        if (!this.done.has(pass)) this.done.set(pass, new Map());
        this.done.get(pass)?.set(i, result);
      }
    }
  }
}

async function run(sources: Sources, state: MemoryStateStore, shared?: SharedWork, timeoutMs = 2_500): Promise<CheckResult> {
  return runCheck(
    { check, options, timeoutMs },
    {
      deployment: 'test',
      services: [],
      sources,
      state,
      fingerprinter: new Fingerprinter(),
      knownSecrets: new KnownSecrets(),
      logger: silentLogger(),
      shared: shared ? () => shared : undefined,
    },
  );
}

const failing = (r: CheckResult) =>
  r.findings
    .filter((f) => f.severity !== 'info')
    .map((f) => ({ messageId: f.messageId, resource: f.resource, message: f.message, evidence: f.evidence }));
const measured = (r: CheckResult, name: string) => r.measurements?.find((m) => m.name === name)?.value;

test('a pass by ranges: the checkpoint advances over the contiguous prefix only, no pass before every row is verified, then one process\'s findings', async () => {
  const sources = sourcesOf();
  const one = await run(sourcesOf(), new MemoryStateStore());
  expect(failing(one).map((f) => `${f.messageId} ${f.resource}`)).toEqual(['hashMismatch row=201']);

  const parts = new Parts(sources);
  const state = new MemoryStateStore();
  // Nothing verified yet: the run plans three ranges and waits for them until its time is up.
  const first = await run(sources, state, parts);
  expect(parts.submits).toBe(1);
  expect([...parts.planned.values()][0].size).toBe(3);
  expect(first.status).toBe('error');
  expect(first.error).toMatch(/verified 0 of 600 rows \(up to row 0\); 0 of 3 id ranges of this pass are verified and joined/);

  // The first and the last range verified, the middle one not: only the first is joined.
  await parts.run([0, 2]);
  const second = await run(sources, state, parts);
  // The same pass: its ranges not done are asked for again (a queue drops a part that failed every retry), none planned anew.
  expect(parts.planned.size).toBe(1);
  expect(parts.asked.at(-1)).toEqual([1]);
  expect(second.status).toBe('error');
  expect(second.error).toMatch(/verified 200 of 600 rows \(up to row 200\); 1 of 3 id ranges/);
  expect(measured(second, 'receipt_chain_verified_rows')).toBe(200);

  // The middle one lands: the pass is assembled, with the findings of one process.
  await parts.run([1]);
  const third = await run(sources, state, parts);
  expect({ status: third.status, error: third.error }).toEqual({ status: 'fail', error: null });
  expect(failing(third)).toEqual(failing(one));
  expect(measured(third, 'receipt_chain_verified_rows')).toBe(600);

  // The next run is incremental, as after any first pass: no new ranges.
  const submits = parts.submits;
  const fourth = await run(sources, state, parts);
  expect(parts.submits).toBe(submits);
  expect(parts.planned.size).toBe(1);
  expect(failing(fourth)).toEqual(failing(one));
}, 60_000);

test('a finding in the joined prefix is reported while the rest is pending (the run still says how far it came)', async () => {
  const sources = sourcesOf();
  const parts = new Parts(sources);
  const state = new MemoryStateStore();
  await run(sources, state, parts);
  await parts.run([0, 1]);
  const r = await run(sources, state, parts);
  expect(r.status).toBe('fail');
  expect(failing(r).map((f) => `${f.messageId} ${f.resource}`)).toEqual(['hashMismatch row=201']);
  const incomplete = r.findings.find((f) => f.messageId === 'incomplete');
  expect(incomplete?.message).toMatch(/verified 400 of 600 rows \(up to row 400\); 2 of 3 id ranges/);
}, 60_000);

test('a chain shorter than two ranges is verified in one pass, and without the queue nothing is cut', async () => {
  const b = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(150);
  b.root();
  const sources: Sources = { postgres: new FakeAuditDb(b.snapshot()), secrets: new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), root.holder('root')] }) };
  const parts = new Parts(sources);
  const r = await run(sources, new MemoryStateStore(), parts);
  expect(r.status).toBe('pass');
  expect(parts.submits).toBe(0);
  const big = sourcesOf();
  const alone = await run(big, new MemoryStateStore());
  expect(alone.status).toBe('fail');
  expect(measured(alone, 'receipt_chain_verified_rows')).toBe(600);
}, 60_000);
