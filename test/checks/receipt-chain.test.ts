import check, { rowsDue } from '../../checks/receipt-chain';
import * as pipeline from '../../checks/lib/chain-pipeline';
import { expectedRowHash } from '../../checks/lib/canonical';
import { KeyRing } from '../../checks/lib/ed25519';
import { FINGERPRINT_RE } from '../../checks/lib/keys';
import type { AuditRow, StreamRowsOptions } from '../../src/core/sources';
import type { CheckResult } from '../../src/core/types';
import { resource } from '../../src/core/finding';
import { untrusted } from '../../src/core/untrusted';
import { CheckTester, DEFAULT_NOW, expectFindings, expectNoSecrets, runCase, type CaseBase, type ExpectedFinding } from '../helpers/check-tester';
import { AuditLogBuilder, FakeAuditDb, FakeSecretStore, MemoryStateStore, TestKey, referenceRowHash } from '../fakes';

const receipt = TestKey.generate();
const root = TestKey.generate();
const old = TestKey.generate();
const stranger = TestKey.generate();
const HOSTILE_FP = `sha256:\u0000${'f'.repeat(5000)}\r\n`;

const secrets = () => new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), root.holder('root')] });

/** The note every complete run ends with: how much is verified and how fresh. */
const FRESH: ExpectedFinding = { messageId: 'freshness', resource: 'chain=audit/public.audit_log', severity: 'info' };

/** 20 rows with roots after rows 10 and 20, all signed by the current keys. */
function chain(n = 20): AuditLogBuilder {
  const b = new AuditLogBuilder({ receiptKey: receipt, rootKey: root }).receipts(n / 2);
  b.root();
  b.receipts(n / 2);
  b.root();
  return b;
}

/** A chain with one row changed by `edit` (ids are 1-based). */
function corrupt(b: AuditLogBuilder, id: number, edit: (r: AuditRow) => AuditRow): FakeAuditDb {
  const s = b.snapshot();
  s.rows = s.rows.map((r) => (r.id === id ? edit(r) : r));
  return new FakeAuditDb(s);
}

/** A row re-hashed and re-signed after an edit, as an attacker holding the key would. */
function reseal(r: AuditRow, key: TestKey): AuditRow {
  const rowHash = referenceRowHash(r.prevHash, r);
  return { ...r, rowHash, signature: key.signHash(rowHash) };
}

const measured = (r: CheckResult, name: string) => r.measurements?.find((m) => m.name === name)?.value;
const verifiedOf = (r: CheckResult) => measured(r, 'receipt_rows_verified');

describe('hashing and signatures (checks/lib)', () => {
  test('the fakes hash independently; both agree on every row of a built chain', () => {
    for (const r of chain(10).rows) expect(expectedRowHash(r)).toBe(r.rowHash);
  });
  test('sodium and node:crypto verifiers agree', () => {
    const rows = chain(4).rows;
    for (const useSodium of [true, false]) {
      const ring = new KeyRing({ useSodium });
      expect(ring.addPem(receipt.publicKeyPem)).toBe(receipt.fingerprint);
      const msg = Buffer.from(rows[0].rowHash, 'hex');
      expect(ring.verify(receipt.fingerprint, msg, rows[0].signature)).toBe('valid');
      expect(ring.verify(receipt.fingerprint, msg, rows[1].signature)).toBe('invalid');
      expect(ring.verify(receipt.fingerprint, msg, 'nope')).toBe('malformed');
      expect(ring.verify(old.fingerprint, msg, rows[0].signature)).toBe('unknown-key');
    }
  });
});

CheckTester.run(
  check,
  {
    pass: [
      {
        name: 'an intact chain with its roots',
        sources: () => ({ postgres: new FakeAuditDb(chain().snapshot()), secrets: secrets() }),
        notes: [{ ...FRESH, message: /^20 rows verified \(up to row 20\): 20 new this run and 0 re-verified; the oldest verification is under a second old \(every row is re-verified within 1d\)/, evidence: { verifiedRows: 20, verifiedThisRun: 20 } }],
        verify: (r) => {
          expect(verifiedOf(r)).toBe(20);
          expect(measured(r, 'receipt_chain_verified_rows')).toBe(20);
          expect(measured(r, 'receipt_rows_unverified')).toBe(0);
          expect(measured(r, 'receipt_oldest_verification_age_seconds')).toBe(0);
        },
      },
      {
        name: 'rows before a rotation verify under the historical key; the rotation row is chained and signed',
        sources: () => {
          const b = new AuditLogBuilder({ receiptKey: old, rootKey: root }).receipts(5);
          b.rotate('receipt', receipt);
          b.receipts(5);
          b.root();
          return { postgres: new FakeAuditDb({ ...b.snapshot(), historical: [old.historical()] }), secrets: secrets() };
        },
        notes: [FRESH],
      },
      {
        name: 'an empty audit log',
        sources: () => ({ postgres: new FakeAuditDb(), secrets: secrets() }),
        notes: [FRESH],
        verify: (r) => expect(verifiedOf(r)).toBe(0),
      },
      {
        name: 'without permission to read the server identity, the chain is known by database, table and first row',
        sources: () => ({ postgres: new FakeAuditDb({ ...chain().snapshot(), location: { systemIdentifier: null, systemIdentifierUnavailable: 'permission denied for pg_control_system()' } }), secrets: secrets() }),
        notes: [{ ...FRESH, evidence: { serverIdentity: 'permission denied for pg_control_system()', chain: { server: null, database: 'audit', table: 'public.audit_log' } } }],
      },
    ],
    fail: [
      {
        name: 'an altered payload',
        sources: () => ({ postgres: corrupt(chain(), 7, (r) => ({ ...r, payload: { request: 'forged' } })), secrets: secrets() }),
        findings: [
          FRESH,
          {
            messageId: 'hashMismatch',
            resource: 'row=7',
            message: /Audit row 7 was altered.*1 broken row\(s\).*the first is row 7/,
            evidence: { firstBrokenRow: 7, brokenRowsTotal: 1, problems: [{ kind: 'hashMismatch' }] },
          },
        ],
      },
      {
        name: 'a payload with no RFC 8785 form (a number JSON cannot hold) is an altered row, not a crash',
        sources: () => ({ postgres: corrupt(chain(), 3, (r) => ({ ...r, payload: { n: Number.POSITIVE_INFINITY } })), secrets: secrets() }),
        findings: [FRESH, { messageId: 'hashMismatch', resource: 'row=3', evidence: { problems: [{ kind: 'hashMismatch', detail: 'the row has no RFC 8785 canonical form (Infinity is not a JSON number)' }] } }],
      },
      {
        name: 'a deleted row breaks the chain at the next one',
        sources: () => {
          const s = chain().snapshot();
          return { postgres: new FakeAuditDb({ rows: s.rows.filter((r) => r.id !== 12), roots: s.roots }), secrets: secrets() };
        },
        findings: [FRESH, { messageId: 'chainBreak', resource: 'row=13', message: /prev_hash is not the row_hash of row 11/ }],
      },
      {
        name: 'a re-hashed, re-signed row still breaks the chain at the next row',
        sources: () => ({ postgres: corrupt(chain(), 4, (r) => reseal({ ...r, payload: { x: 1 } }, receipt)), secrets: secrets() }),
        findings: [FRESH, { messageId: 'chainBreak', resource: 'row=5' }],
      },
      {
        name: 'the first row must start from 64 zeros',
        sources: () => ({ postgres: corrupt(chain(), 1, (r) => ({ ...r, prevHash: 'f'.repeat(64) })), secrets: secrets() }),
        findings: [FRESH, { messageId: 'chainBreak', resource: 'row=1', message: /first row; expected 64 zeros/ }],
      },
      {
        name: 'an altered prev_hash is reported as the chain break, with the hash mismatch in evidence',
        sources: () => ({ postgres: corrupt(chain(), 9, (r) => ({ ...r, prevHash: 'a'.repeat(64) })), secrets: secrets() }),
        findings: [FRESH, { messageId: 'chainBreak', resource: 'row=9', evidence: { problems: [{ kind: 'chainBreak' }, { kind: 'hashMismatch' }] } }],
      },
      {
        name: 'a signature from another row, and one that is not base64',
        sources: () => {
          const b = chain();
          const s = b.snapshot();
          s.rows[2] = { ...s.rows[2], signature: s.rows[3].signature };
          s.rows[5] = { ...s.rows[5], signature: 'not-a-signature' };
          return { postgres: new FakeAuditDb(s), secrets: secrets() };
        },
        findings: [
          FRESH,
          { messageId: 'badSignature', resource: 'row=3', message: new RegExp(`row 3 does not verify under key ${receipt.fingerprint.slice(0, 19)}.*2 broken`) },
          { messageId: 'badSignature', resource: 'row=6', evidence: { problems: [{ kind: 'badSignature', detail: 'signature is not 64 bytes of base64' }] } },
        ],
      },
      {
        name: 'rows signed by a key that is neither current nor historical: one finding per key',
        sources: () => {
          const b = new AuditLogBuilder({ receiptKey: old, rootKey: root }).receipts(6);
          b.rotate('receipt', receipt);
          b.receipts(3);
          return { postgres: new FakeAuditDb(b.snapshot()), secrets: secrets() };
        },
        findings: [
          FRESH,
          {
            messageId: 'unknownKey',
            resource: `fingerprint=${old.fingerprint}`,
            message: /7 audit row\(s\) \(ids 1–7\) are signed by/,
            evidence: { rows: 7, firstRow: 1, lastRow: 7 },
          },
        ],
      },
      {
        name: 'roots: wrong hash, unknown signer, missing row, bad signature',
        sources: () => {
          const b = chain();
          const s = b.snapshot();
          const r = s.roots[0];
          s.roots = [
            { ...r, id: 1, rootHash: s.rows[3].rowHash },
            { ...r, id: 2, keyFingerprint: stranger.fingerprint, signature: stranger.signHash(r.rootHash) },
            { ...r, id: 3, upToId: 999 },
            { ...r, id: 4, signature: s.roots[1].signature },
            { ...s.roots[1], id: 5 },
          ];
          return { postgres: new FakeAuditDb(s), secrets: secrets() };
        },
        findings: [
          FRESH,
          { messageId: 'rootMismatch', resource: 'root=1', message: /root 1 does not vouch for audit row 10: its root_hash is not row 10's row_hash/ },
          { messageId: 'rootMismatch', resource: 'root=2', message: /neither a configured root key nor in the historical keys table/ },
          { messageId: 'rootMismatch', resource: 'root=3', message: /row 999 does not exist/ },
          { messageId: 'rootMismatch', resource: 'root=4', message: /signature does not verify/ },
        ],
      },
      {
        name: 'hostile text in a broken row (action, fingerprint) reaches the finding bounded and on one line',
        sources: () =>
          ({
            postgres: corrupt(chain(), 6, (r) => ({ ...r, action: `<script>alert(1)</script>\n${'A'.repeat(10_000)}`, keyFingerprint: HOSTILE_FP })),
            secrets: secrets(),
          }),
        findings: [FRESH, { messageId: 'hashMismatch', resource: 'row=6' }, { messageId: 'unknownKey', resource: resource({ fingerprint: untrusted.shaped(HOSTILE_FP, FINGERPRINT_RE) }) }],
        verify: (r) => {
          for (const f of r.findings) {
            expect(f.message).not.toMatch(/[\n\r\u0000]/);
            expect(f.message.length).toBeLessThan(400);
            expect(f.resource.length).toBeLessThan(240);
            expect(JSON.stringify(f.evidence).length).toBeLessThan(2_000);
          }
          const row6 = r.findings.find((f) => f.resource === 'row=6');
          expect(row6?.evidence.action).toBe(`<script>alert(1)</script> ${'A'.repeat(37)}…`);
          // Not a fingerprint's shape: never shown, only described.
          expect(row6?.evidence.keyFingerprint).toMatch(/^unrecognised value, 5010 characters #[0-9a-f]{12}$/);
        },
      },
      {
        name: 'findings are capped; the total and the first broken row are in every one',
        options: { maxFindings: 3 },
        sources: () => {
          const s = chain().snapshot();
          s.rows = s.rows.map((r) => (r.id % 2 === 0 ? { ...r, payload: { tampered: r.id } } : r));
          return { postgres: new FakeAuditDb(s), secrets: secrets() };
        },
        findings: [
          FRESH,
          ...[2, 4, 6].map((id) => ({
            messageId: 'hashMismatch',
            resource: `row=${id}`,
            message: /10 broken row\(s\) in the chain; the first is row 2/,
            evidence: { brokenRowsTotal: 10, reportedRows: 3, firstBrokenRow: 2 },
          })),
        ],
      },
    ],
    error: [
      {
        name: 'postgres fails while streaming: nothing verified, and the error says so',
        sources: () => ({ postgres: new FakeAuditDb(chain().snapshot()).fail('streamRows'), secrets: secrets() }),
        error: /^receipt-chain: verification is incomplete: verified 0 of 20 rows \(up to row 0\); postgres: streamRows: connection refused\. The rest continues next run\.$/,
        code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
        verify: (r) => expect(r.sourceErrors).toEqual([{ source: 'postgres', reason: 'connection_refused' }]),
      },
      {
        name: 'the server identity cannot be read for another reason than permission',
        sources: () => ({ postgres: new FakeAuditDb(chain().snapshot()).fail('chainLocation'), secrets: secrets() }),
        error: /postgres: chainLocation: connection refused/,
        code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
      },
      {
        name: 'the secret store fails',
        sources: () => ({ postgres: new FakeAuditDb(chain().snapshot()), secrets: secrets().fail('signingKeys') }),
        error: /connection refused/,
        code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
      },
      {
        name: 'the state store fails',
        state: (() => {
          const s = new MemoryStateStore();
          s.failures.set('get');
          return s;
        })(),
        sources: () => ({ postgres: new FakeAuditDb(chain().snapshot()), secrets: secrets() }),
        error: /state: get: connection refused/,
      },
    ],
  },
  { coveredElsewhere: ['checkpointMismatch', 'chainReplaced', 'stateReset', 'incomplete'] },
);

/** Runs the check again and again over the same (mutable) fake and state, on a clock the test moves. */
function harness(b: AuditLogBuilder, opts: { db?: FakeAuditDb; state?: MemoryStateStore } = {}) {
  const db = opts.db ?? new FakeAuditDb(b.snapshot());
  const store = secrets();
  const state = opts.state ?? new MemoryStateStore();
  let clock = DEFAULT_NOW.getTime();
  const run = async (options: Record<string, unknown> = {}, extra: Partial<CaseBase> = {}) => {
    const c: CaseBase = { name: 'harness', sources: { postgres: db, secrets: store }, options, now: new Date(clock), ...extra };
    const outcome = await runCase(check, c, { state, sources: { postgres: db, secrets: store } });
    expectNoSecrets(outcome);
    return outcome.result;
  };
  /** Appends n good rows to the fake, keeping any corruption a test made to earlier rows. */
  const extend = (n: number) => {
    const from = b.rows.length;
    b.receipts(n);
    db.rows = [...db.rows, ...b.snapshot().rows.slice(from)];
  };
  const edit = (id: number, fn: (r: AuditRow) => AuditRow) => {
    db.rows = db.rows.map((r) => (r.id === id ? fn(r) : r));
  };
  const checkpoint = () => {
    const k = state.keys().find((x) => x.startsWith('receipt-chain@'));
    return k ? state.get<{ lastId: number; verifiedTotal: number; rehash: { cursor: number }; pending: [number, number][]; identity: { firstRowId: number } }>(k) : undefined;
  };
  return { db, state, run, extend, edit, checkpoint, builder: b, advance: (ms: number) => (clock += ms), now: () => new Date(clock) };
}

const HOUR = 3_600_000;

describe('checkpoint', () => {
  test('the second run verifies only the rows written since the first', async () => {
    const h = harness(chain(40));
    const first = await h.run();
    expect(first.status).toBe('pass');
    expect(verifiedOf(first)).toBe(40);
    h.extend(7);
    const before = h.db.streamedRows;
    const second = await h.run();
    expect(second.status).toBe('pass');
    expect(verifiedOf(second)).toBe(7);
    expect(h.db.streamedRows - before).toBe(7);
    expect(await h.checkpoint()).toMatchObject({ lastId: 47, verifiedTotal: 47 });
    expectFindings(second, [{ ...FRESH, message: /^47 rows verified \(up to row 47\): 7 new this run/ }]);
  });

  test('a new row that does not chain to the checkpoint is caught', async () => {
    const h = harness(chain(10));
    await h.run();
    h.extend(3);
    h.edit(11, (r) => reseal({ ...r, prevHash: 'b'.repeat(64) }, receipt));
    const second = await h.run();
    // Re-sealing row 11 changed its hash, so row 12 no longer chains to it either.
    expectFindings(second, [
      FRESH,
      { messageId: 'chainBreak', resource: 'row=11', message: /row_hash of row 10/ },
      { messageId: 'chainBreak', resource: 'row=12', message: /row_hash of row 11/ },
    ]);
  });

  test('a broken row stays reported on later runs, and goes when it is repaired', async () => {
    const h = harness(chain(30));
    const good = h.db.rows.find((r) => r.id === 5) as AuditRow;
    h.edit(5, (r) => ({ ...r, payload: { forged: true } }));
    const first = await h.run();
    expectFindings(first, [FRESH, { messageId: 'hashMismatch', resource: 'row=5' }]);
    h.extend(4);
    const second = await h.run();
    expect(verifiedOf(second)).toBe(4);
    expectFindings(second, [FRESH, { messageId: 'hashMismatch', resource: 'row=5', evidence: { firstBrokenRow: 5, brokenRowsTotal: 1 } }]);
    expect(second.findings.find((f) => f.resource === 'row=5')?.id).toBe(first.findings.find((f) => f.resource === 'row=5')?.id);
    // Restored from backup: the finding disappears.
    h.edit(5, () => good);
    const third = await h.run();
    expect(third.status).toBe('pass');
    expect(verifiedOf(third)).toBe(0);
  });

  test('a checkpoint row rewritten after verification forces a full pass and is reported while it differs', async () => {
    const h = harness(chain(20));
    await h.run();
    const original = h.db.rows[19];
    // Someone holding the key rewrote the last verified row consistently.
    h.db.rows[19] = reseal({ ...original, payload: { rewritten: true } }, receipt);
    const second = await h.run();
    expect(verifiedOf(second)).toBe(20);
    expectFindings(second, [
      FRESH,
      { messageId: 'checkpointMismatch', resource: 'row=20', message: /row 20 changed after it was verified: its row_hash was/, evidence: { verifiedHash: original.rowHash } },
      // The root over row 20 still holds the original hash: it no longer vouches for the row.
      { messageId: 'rootMismatch', resource: 'root=2' },
    ]);
    const third = await h.run();
    expect(verifiedOf(third)).toBe(0);
    expectFindings(third, [FRESH, { messageId: 'checkpointMismatch', resource: 'row=20' }, { messageId: 'rootMismatch', resource: 'root=2' }]);
    // A deleted tail (the highest verified row vanished) is reported the same way.
    h.db.rows = h.db.rows.slice(0, 19);
    const fourth = await h.run();
    expect(verifiedOf(fourth)).toBe(19);
    expectFindings(fourth, [
      FRESH,
      { messageId: 'checkpointMismatch', resource: 'row=20', message: /no longer exists/ },
      { messageId: 'rootMismatch', resource: 'root=2', message: /row 20 does not exist/ },
    ]);
  });

  test('an unknown key stays reported, and rows are verified once its historical entry appears', async () => {
    const b = new AuditLogBuilder({ receiptKey: old, rootKey: root }).receipts(5);
    b.rotate('receipt', receipt);
    b.receipts(5);
    const h = harness(b);
    const first = await h.run();
    expectFindings(first, [FRESH, { messageId: 'unknownKey', resource: `fingerprint=${old.fingerprint}`, evidence: { rows: 6 } }]);
    h.extend(2);
    h.advance(HOUR); // the rolling slice re-verifies some old rows: they are not counted twice
    const second = await h.run();
    expect(verifiedOf(second)).toBe(2);
    expectFindings(second, [FRESH, { messageId: 'unknownKey', resource: `fingerprint=${old.fingerprint}`, evidence: { rows: 6 } }]);
    h.db.historical = [old.historical()];
    const third = await h.run();
    expect(third.status).toBe('pass');
    expect(verifiedOf(third)).toBe(13); // a full pass: those rows were never signature-checked
  });

  test('a broken root stays reported; new roots are checked once', async () => {
    const h = harness(chain(10));
    h.db.roots = h.db.roots.map((r) => ({ ...r, rootHash: h.db.rows[2].rowHash }));
    const first = await h.run();
    expectFindings(first, [FRESH, { messageId: 'rootMismatch', resource: 'root=1' }, { messageId: 'rootMismatch', resource: 'root=2' }]);
    h.extend(2);
    h.builder.root();
    h.db.roots = [...h.db.roots, h.builder.snapshot().roots[2]];
    const spy = jest.spyOn(h.db, 'rootsAfter');
    const second = await h.run();
    expect(spy).toHaveBeenCalledWith(0);
    expectFindings(second, [FRESH, { messageId: 'rootMismatch', resource: 'root=1' }, { messageId: 'rootMismatch', resource: 'root=2' }]);
  });

  test('broken roots beyond the findings cap are still reported on later runs', async () => {
    const h = harness(chain(10));
    h.db.roots = h.db.roots.map((r) => ({ ...r, rootHash: h.db.rows[2].rowHash }));
    const both = [FRESH, { messageId: 'rootMismatch', resource: 'root=1' }, { messageId: 'rootMismatch', resource: 'root=2' }];
    expectFindings(await h.run({ maxFindings: 1 }), both);
    expectFindings(await h.run({ maxFindings: 1 }), both);
  });

  test('rows are read in bounded batches', async () => {
    const h = harness(chain(600));
    const r = await h.run({ batchSize: 50 });
    expect(r.status).toBe('pass');
    expect(verifiedOf(r)).toBe(600);
    expect(h.db.largestBatch).toBe(50);
  });

  test('the checkpoint holds only public chain data, under the chain and the deployment', async () => {
    const h = harness(chain(10));
    await h.run();
    const keys = h.state.keys();
    expect(keys).toHaveLength(2);
    expect(keys).toContain('receipt-chain:test');
    expect(keys.find((k) => k !== 'receipt-chain:test')).toMatch(/^receipt-chain@audit\.public\.audit_log\.[0-9a-f]{16}$/);
    expect(h.state.dump()).not.toMatch(/PRIVATE KEY|PUBLIC KEY/);
  });

  test('run --full verifies everything again', async () => {
    const h = harness(chain(30));
    await h.run();
    h.extend(5);
    const r = await h.run({}, { full: true });
    expect(r.status).toBe('pass');
    expect(verifiedOf(r)).toBe(35);
  });
});

/** A fake whose reads are slow (or fail) after some batches: a long pass, or a dropped connection. */
class TroubledDb extends FakeAuditDb {
  delayMs = 0;
  /** Fail the stream after this many batches (once). */
  failAfterBatches: number | undefined;
  onBatch?: (rows: AuditRow[]) => void | Promise<void>;
  override async *streamRows(afterId: number, opts: StreamRowsOptions = {}) {
    let n = 0;
    for await (const batch of super.streamRows(afterId, opts)) {
      if (this.failAfterBatches !== undefined && n++ >= this.failAfterBatches) {
        this.failAfterBatches = undefined;
        throw new (await import('../../src/core/errors')).AuditError('AUDIT_ERR_SOURCE_UNAVAILABLE', 'postgres: reading audit rows: Connection terminated unexpectedly', { source: 'postgres', reason: 'connection_reset' });
      }
      yield batch;
      await this.onBatch?.(batch);
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    }
  }
}

describe('a pass cut short continues where it stopped', () => {
  test('out of time: progress is kept and the error says how far it came; the next run finishes', async () => {
    const b = chain(400);
    const db = new TroubledDb(b.snapshot());
    // 20 batches 250 ms apart cannot all arrive within 3 s, and the first is verified well
    // within it however loaded the machine (with 15 ms and 300 ms, a slow start could verify none).
    db.delayMs = 250;
    const h = harness(b, { db });
    const first = await h.run({ batchSize: 20 }, { timeoutMs: 3_000 });
    expect(first.status).toBe('error');
    expect(first.errorCode).toBe('AUDIT_ERR_TIMEOUT');
    expect(first.sourceErrors).toBeUndefined(); // running out of time is no source's fault
    expect(first.error).toMatch(/^receipt-chain: verification is incomplete: verified (\d+) of 400 rows \(up to row \1\); the check's time ran out after .* The rest continues next run\.$/);
    const done = Number(/verified (\d+) of/.exec(first.error ?? '')?.[1]);
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(400);
    expect(measured(first, 'receipt_rows_unverified')).toBe(400 - done);
    expect((await h.checkpoint())?.lastId).toBe(done);
    db.delayMs = 0;
    const second = await h.run({ batchSize: 20 }, { timeoutMs: 30_000 });
    expect(second.status).toBe('pass');
    expect(verifiedOf(second)).toBe(400 - done);
  });

  test('a dropped connection: findings already found stand (fail, with a note); the next run ends as an uninterrupted one', async () => {
    const b = chain(200);
    const db = new TroubledDb(b.snapshot());
    // One tampered row before the cut, one after it.
    db.rows = db.rows.map((r) => (r.id === 30 || r.id === 170 ? { ...r, payload: { forged: r.id } } : r));
    const uninterrupted = await harness(b, { db: new FakeAuditDb({ rows: db.rows, roots: db.roots }) }).run({ batchSize: 25 });
    db.failAfterBatches = 4;
    const h = harness(b, { db });
    const first = await h.run({ batchSize: 25 });
    expect(first.status).toBe('fail');
    expectFindings(first, [
      { messageId: 'hashMismatch', resource: 'row=30' },
      { messageId: 'incomplete', resource: 'chain=audit/public.audit_log', severity: 'info', message: /^Verification is incomplete: verified 100 of 200 rows \(up to row 100\); postgres: reading audit rows: Connection terminated unexpectedly\. The rest continues next run\.$/ },
    ]);
    const second = await h.run({ batchSize: 25 });
    expect(verifiedOf(second)).toBe(100);
    const key = (r: CheckResult) => r.findings.filter((f) => f.severity !== 'info').map((f) => `${f.messageId} ${f.resource} ${f.message}`).sort();
    expect(key(second)).toEqual(key(uninterrupted));
    expect(key(second)).toHaveLength(2);
    expectFindings(second, [FRESH, { messageId: 'hashMismatch', resource: 'row=30' }, { messageId: 'hashMismatch', resource: 'row=170' }]);
  });

  test('re-verification of older rows cut by a failing source is an error that says every row was verified', async () => {
    const b = chain(100);
    const db = new TroubledDb(b.snapshot());
    const h = harness(b, { db });
    expect((await h.run()).status).toBe('pass');
    h.advance(6 * HOUR);
    db.failAfterBatches = 0;
    const r = await h.run();
    expect(r.status).toBe('error');
    expect(r.error).toBe(
      'receipt-chain: verification is incomplete: verified 100 of 100 rows (up to row 100); every row was verified, but re-verifying older rows stopped: postgres: reading audit rows: Connection terminated unexpectedly. The rest continues next run.',
    );
    // Nothing of the slice was done: it is owed next time.
    const again = await h.run();
    expect(measured(again, 'receipt_rows_reverified')).toBe(34);
  });

  test('progress is saved during the pass, not only at its end', async () => {
    const b = chain(300);
    const db = new TroubledDb(b.snapshot());
    const h = harness(b, { db });
    const seen: number[] = [];
    db.onBatch = async (rows) => {
      seen.push((await h.checkpoint())?.lastId ?? 0);
      void rows;
    };
    await h.run({ batchSize: 50, checkpoint_interval: 0 });
    // Each batch is saved as soon as it is verified, before the next one is read.
    expect(seen.slice(0, 4)).toEqual([50, 100, 150, 200]);
  });
});

describe('state bound to the chain', () => {
  test('another chain behind the same deployment: a full pass and a note, never a tamper finding or a skipped row', async () => {
    const state = new MemoryStateStore();
    const h1 = harness(chain(40), { state });
    await h1.run();
    // The database was rebuilt on another server with a longer, intact chain of its own.
    const rebuilt = new FakeAuditDb({ ...chain(60).snapshot(), location: { systemIdentifier: '7000000000000000002', databaseOid: 16390 } });
    const h2 = harness(chain(60), { db: rebuilt, state });
    const r = await h2.run();
    expect(r.status).toBe('pass');
    expect(verifiedOf(r)).toBe(60);
    expectFindings(r, [
      FRESH,
      {
        messageId: 'chainReplaced',
        resource: 'chain=audit/public.audit_log',
        severity: 'info',
        message: /^The chain behind this deployment is a different one than last verified \(server 7000000000000000001 → 7000000000000000002, database audit \(OID 16384\) → audit \(OID 16390\)\); it was verified from the start/,
      },
    ]);
    // The note is said once: the next run continues quietly from the new chain's checkpoint.
    const again = await h2.run();
    expectFindings(again, [FRESH]);
    expect(verifiedOf(again)).toBe(0);
  });

  test('the same table rebuilt with other rows (same server, database and row ids): a different chain, not tampering', async () => {
    const h = harness(chain(40));
    await h.run();
    const other = new AuditLogBuilder({ receiptKey: receipt, rootKey: root, start: new Date('2026-11-20T00:00:00.000Z') }).receipts(50).snapshot(); // other timestamps: every row differs
    h.db.rows = other.rows;
    h.db.roots = [];
    const r = await h.run();
    expect(r.status).toBe('pass');
    expect(verifiedOf(r)).toBe(50);
    expectFindings(r, [FRESH, { messageId: 'chainReplaced', resource: 'chain=audit/public.audit_log', message: /\(first row 1 \([0-9a-f]{12}…\) → 1 \([0-9a-f]{12}…\)\)/ }]);
  });

  test('the first rows deleted: the same chain with rows gone, reported as such', async () => {
    const h = harness(chain(20));
    await h.run();
    h.db.rows = h.db.rows.filter((r) => r.id > 2);
    const r = await h.run();
    expectFindings(r, [
      FRESH,
      { messageId: 'checkpointMismatch', resource: 'row=1', message: /no longer exists/ },
      { messageId: 'chainBreak', resource: 'row=3', message: /it is the first row; expected 64 zeros/ },
    ]);
  });

  test('two deployments auditing the same chain share its checkpoint', async () => {
    const state = new MemoryStateStore();
    const b = chain(40);
    const db = new FakeAuditDb(b.snapshot());
    const h = harness(b, { db, state });
    await h.run();
    const other = await runCase(check, { name: 'other deployment', deployment: 'prod-eu', sources: { postgres: db, secrets: secrets() } }, { state });
    expect(other.result.status).toBe('pass');
    expect(verifiedOf(other.result)).toBe(0);
    expect(other.result.findings.map((f) => f.messageId)).toEqual(['freshness']);
  });

  test("an older record under another deployment's name says nothing when the chain's own checkpoint applies", async () => {
    const state = new MemoryStateStore();
    const b = chain(40);
    const db = new FakeAuditDb(b.snapshot());
    await harness(b, { db, state }).run();
    await state.set('receipt-chain:prod-eu', { version: 1, lastId: 40, lastRowHash: 'a'.repeat(64) });
    const other = await runCase(check, { name: 'other deployment', deployment: 'prod-eu', sources: { postgres: db, secrets: secrets() } }, { state });
    expectFindings(other.result, [FRESH]);
    expect(verifiedOf(other.result)).toBe(0);
  });

  test('a corrupt checkpoint, or one from an older version, is a note and a full pass', async () => {
    const h = harness(chain(20));
    await h.run();
    const key = h.state.keys().find((k) => k.startsWith('receipt-chain@')) as string;
    h.state.setRaw(key, '{"version":2,"lastId":');
    const corrupt = await h.run();
    expect(corrupt.status).toBe('pass');
    expect(verifiedOf(corrupt)).toBe(20);
    expectFindings(corrupt, [FRESH, { messageId: 'stateReset', resource: 'chain=audit/public.audit_log', severity: 'info', message: /is not valid JSON\); the chain was verified from the start/ }]);

    const fresh = harness(chain(20));
    // What version 1 kept under the deployment's name.
    await fresh.state.set('receipt-chain:test', { version: 1, lastId: 20, lastRowHash: 'a'.repeat(64), lastRootId: 2, broken: [], overflow: false, unknownKeys: [], brokenRoots: [], changed: [], verifiedTotal: 20 });
    const upgraded = await fresh.run();
    expect(upgraded.status).toBe('pass');
    expect(verifiedOf(upgraded)).toBe(20);
    expectFindings(upgraded, [FRESH, { messageId: 'stateReset', resource: 'chain=audit/public.audit_log', message: /older version of the auditor \(format 1/ }]);
    expectFindings(await fresh.run(), [FRESH]);

    await fresh.state.set(key, { version: 2, identity: 'x' });
    const garbled = await fresh.run();
    expectFindings(garbled, [FRESH, { messageId: 'stateReset', resource: 'chain=audit/public.audit_log', message: /not in the expected format/ }]);
  });

  test('an empty chain that gets its first rows is the same chain', async () => {
    const b = chain(20);
    const h = harness(b, { db: new FakeAuditDb() });
    await h.run();
    h.db.rows = b.snapshot().rows;
    const r = await h.run();
    expectFindings(r, [FRESH]);
    expect(verifiedOf(r)).toBe(20);
  });
});

describe('rolling re-verification', () => {
  test('rows due per cycle: the share of the period since the last cycle, finishing a round one interval early', () => {
    const DAY = 24 * HOUR;
    expect(rowsDue(1_000_000, 15 * 60_000, DAY, 0)).toBe(Math.ceil((1_000_000 * 15) / (1440 - 15)));
    expect(rowsDue(100_000, 15 * 60_000, DAY, 0)).toBe(1053);
    expect(rowsDue(1000, 0, DAY, 0)).toBe(0);
    expect(rowsDue(1000, 0, DAY, 7)).toBe(7);
    expect(rowsDue(1000, 12 * HOUR, DAY, 0)).toBe(1000);
    expect(rowsDue(1000, 3 * DAY, DAY, 0)).toBe(1000);
    expect(rowsDue(0, HOUR, DAY, 0)).toBe(0);
    // 96 cycles of 15 minutes cover every row within the day.
    let cursor = 0;
    let cycles = 0;
    while (cursor < 1_000_000) {
      cursor += rowsDue(1_000_000, 15 * 60_000, DAY, 0);
      cycles++;
    }
    expect(cycles).toBeLessThanOrEqual(95);
  });

  test('a row altered after it was verified is found within one rehash_period, on a 15-minute schedule', async () => {
    const period = 4 * HOUR;
    const h = harness(chain(400));
    expect((await h.run({ rehash_period: '4h' })).status).toBe('pass');
    // Right after the first pass, two rows are changed: one edited in place, one re-hashed and
    // re-signed with the key (which only its successor's link gives away), and one deleted.
    h.edit(390, (r) => ({ ...r, payload: { edited: true } }));
    h.edit(120, (r) => reseal({ ...r, payload: { resealed: true } }, receipt));
    h.db.rows = h.db.rows.filter((r) => r.id !== 250);
    const found = new Map<string, number>();
    let elapsed = 0;
    let maxAge = 0;
    while (elapsed < period) {
      h.advance(15 * 60_000);
      elapsed += 15 * 60_000;
      const r = await h.run({ rehash_period: '4h', batchSize: 16 });
      maxAge = Math.max(maxAge, measured(r, 'receipt_oldest_verification_age_seconds') ?? 0);
      expect(measured(r, 'receipt_rows_reverified')).toBeGreaterThan(0);
      for (const f of r.findings) if (f.severity !== 'info' && !found.has(f.resource)) found.set(f.resource, elapsed);
    }
    expect([...found.keys()].sort()).toEqual(['row=121', 'row=251', 'row=390']);
    for (const t of found.values()) expect(t).toBeLessThanOrEqual(period);
    expect(maxAge).toBeLessThanOrEqual(period / 1000);
  });

  test('the report says how fresh verification is', async () => {
    const h = harness(chain(100));
    await h.run();
    h.advance(6 * HOUR);
    const r = await h.run();
    const f = r.findings.find((x) => x.messageId === 'freshness');
    // 6 h of a 24 h period: ceil(100 × 6 / 18) = 34 rows re-verified this run.
    expect(f?.message).toBe('100 rows verified (up to row 100): 0 new this run and 34 re-verified; the oldest verification is 6h old (every row is re-verified within 1d).');
    expect(f?.evidence).toMatchObject({ reverifiedThisRun: 34, oldestVerificationAgeSeconds: 6 * 3600, rehashCursor: 34 });
    expect(measured(r, 'receipt_rows_reverified')).toBe(34);
  });

  test('rows a new transparency root vouches for are verified again in the same run', async () => {
    const b = chain(20);
    const h = harness(b);
    await h.run();
    h.extend(10);
    await h.run();
    // Altered after it was verified, before the root over it was written.
    h.edit(25, (r) => ({ ...r, payload: { altered: true } }));
    h.builder.root(30);
    h.db.roots = h.builder.snapshot().roots;
    const r = await h.run(); // same clock: no rolling slice is due
    expect(measured(r, 'receipt_rows_reverified')).toBe(10);
    expectFindings(r, [FRESH, { messageId: 'hashMismatch', resource: 'row=25' }]);
    expect((await h.checkpoint())?.pending).toEqual([]);
  });
});

describe('the rows ahead of a pass: the total of its progress', () => {
  /** A fake whose chainExtent records the calls that count rows (a scan of its own on a real server). */
  function countingDb(b: AuditLogBuilder, lastIdOf?: (afterId: number) => number) {
    const counts: number[] = [];
    class CountingDb extends FakeAuditDb {
      override async chainExtent(afterId: number, opts: { count?: boolean } = {}) {
        const e = await super.chainExtent(afterId, opts);
        if (opts.count !== false) counts.push(afterId);
        return lastIdOf && e.lastId !== null ? { ...e, lastId: lastIdOf(afterId) } : e;
      }
    }
    return { db: new CountingDb(b.snapshot()), counts };
  }

  test('the ids ahead of the checkpoint, from the first progress on; the rows are not counted', async () => {
    const b = chain(200);
    const { db, counts } = countingDb(b);
    const totals: (number | undefined)[] = [];
    const h = harness(b, { db });
    const r = await h.run({ batchSize: 20 }, { onProgress: (_check, p) => totals.push(p.total) });
    expect(r.status).toBe('pass');
    expect(verifiedOf(r)).toBe(200);
    expect(counts).toEqual([]);
    expect(totals.length).toBeGreaterThan(0);
    expect(totals.every((t) => t === 200)).toBe(true);
    // After the checkpoint: the ids after it.
    h.extend(30);
    totals.length = 0;
    expect((await h.run({ batchSize: 20 }, { onProgress: (_check, p) => totals.push(p.total) })).status).toBe('pass');
    expect(counts).toEqual([]);
    expect(totals.every((t) => t === 30)).toBe(true);
  });

  test('ids far past the rows (a sequence shared with other tables, rows deleted): the ids ahead are the total, at most', async () => {
    const b = chain(60);
    const { db, counts } = countingDb(b, (afterId) => afterId + 300_000);
    const totals: (number | undefined)[] = [];
    const h = harness(b, { db });
    expect((await h.run({ threads: 0, batchSize: 20 }, { onProgress: (_check, p) => totals.push(p.total) })).status).toBe('pass');
    expect(counts).toEqual([]);
    expect(totals.length).toBeGreaterThan(0);
    expect(totals.every((t) => t === 300_000)).toBe(true);
  });

  test('the ids ahead tell the verifier a long pass is coming', async () => {
    const expectSpy = jest.spyOn(pipeline.ChainVerifier.prototype, 'expect');
    try {
      const b = chain(60);
      const h = harness(b);
      expect((await h.run({ threads: 0 })).status).toBe('pass');
      // Rows 1–60 after an empty checkpoint: at most 60 of them.
      expect(expectSpy).toHaveBeenCalledWith(60);
      h.extend(15);
      expect((await h.run({ threads: 0 })).status).toBe('pass');
      expect(expectSpy).toHaveBeenLastCalledWith(15);
    } finally {
      expectSpy.mockRestore();
    }
  });
});

describe('worker threads started ahead of a long pass', () => {
  test('a first pass starts them before its first query; a run after a complete pass does not; nor does one with threads: 0', async () => {
    const prestart = jest.spyOn(pipeline, 'prestartVerifierPool');
    try {
      const h = harness(chain(40));
      const location = jest.spyOn(h.db, 'chainLocation');
      expect((await h.run()).status).toBe('pass');
      expect(prestart).toHaveBeenCalledTimes(1);
      expect(prestart.mock.invocationCallOrder[0]).toBeLessThan(location.mock.invocationCallOrder[0]);
      // The pass is complete: the next run verifies what is new, on this thread.
      h.extend(5);
      expect((await h.run()).status).toBe('pass');
      expect(prestart).toHaveBeenCalledTimes(1);
      // A full pass asked for.
      expect((await h.run({}, { full: true })).status).toBe('pass');
      expect(prestart).toHaveBeenCalledTimes(2);
      // No worker threads wanted.
      const other = harness(chain(40));
      expect((await other.run({ threads: 0 })).status).toBe('pass');
      expect(prestart).toHaveBeenCalledTimes(2);
    } finally {
      prestart.mockRestore();
    }
  });

  test('a pass left unfinished starts them again on the next run', async () => {
    const prestart = jest.spyOn(pipeline, 'prestartVerifierPool');
    try {
      const b = chain(400);
      const db = new TroubledDb(b.snapshot());
      const h = harness(b, { db });
      db.failAfterBatches = 2;
      expect((await h.run({ batchSize: 50 })).status).toBe('error');
      expect((await h.run({ batchSize: 50 })).status).toBe('pass');
      expect(prestart).toHaveBeenCalledTimes(2);
    } finally {
      prestart.mockRestore();
    }
  });
});
