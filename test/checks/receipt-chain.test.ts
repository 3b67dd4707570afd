import check from '../../checks/receipt-chain';
import { expectedRowHash } from '../../checks/lib/canonical';
import { KeyRing } from '../../checks/lib/ed25519';
import type { AuditRow } from '../../src/core/sources';
import { CheckTester, expectFindings, expectNoSecrets, runCase, type CaseBase } from '../helpers/check-tester';
import { AuditLogBuilder, FakeAuditDb, FakeSecretStore, MemoryStateStore, TestKey, referenceRowHash } from '../fakes';

const receipt = TestKey.generate();
const root = TestKey.generate();
const old = TestKey.generate();
const stranger = TestKey.generate();

const secrets = () => new FakeSecretStore({ signingKeys: [receipt.holder('receipt'), root.holder('root')] });

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
        verify: (r) => expect(r.measurements).toContainEqual(expect.objectContaining({ name: 'receipt_rows_verified', value: 20 })),
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
      },
      {
        name: 'an empty audit log',
        sources: () => ({ postgres: new FakeAuditDb(), secrets: secrets() }),
        verify: (r) => expect(r.measurements).toContainEqual(expect.objectContaining({ name: 'receipt_rows_verified', value: 0 })),
      },
    ],
    fail: [
      {
        name: 'an altered payload',
        sources: () => ({ postgres: corrupt(chain(), 7, (r) => ({ ...r, payload: { request: 'forged' } })), secrets: secrets() }),
        findings: [
          {
            messageId: 'hashMismatch',
            resource: 'row=7',
            message: /Audit row 7 was altered.*1 broken row\(s\).*the first is row 7/,
            evidence: { firstBrokenRow: 7, brokenRowsTotal: 1, problems: [{ kind: 'hashMismatch' }] },
          },
        ],
      },
      {
        name: 'a deleted row breaks the chain at the next one',
        sources: () => {
          const s = chain().snapshot();
          return { postgres: new FakeAuditDb({ rows: s.rows.filter((r) => r.id !== 12), roots: s.roots }), secrets: secrets() };
        },
        findings: [{ messageId: 'chainBreak', resource: 'row=13', message: /prev_hash is not the row_hash of row 11/ }],
      },
      {
        name: 'a re-hashed, re-signed row still breaks the chain at the next row',
        sources: () => ({ postgres: corrupt(chain(), 4, (r) => reseal({ ...r, payload: { x: 1 } }, receipt)), secrets: secrets() }),
        findings: [{ messageId: 'chainBreak', resource: 'row=5' }],
      },
      {
        name: 'the first row must start from 64 zeros',
        sources: () => ({ postgres: corrupt(chain(), 1, (r) => ({ ...r, prevHash: 'f'.repeat(64) })), secrets: secrets() }),
        findings: [{ messageId: 'chainBreak', resource: 'row=1', message: /first row; expected 64 zeros/ }],
      },
      {
        name: 'an altered prev_hash is reported as the chain break, with the hash mismatch in evidence',
        sources: () => ({ postgres: corrupt(chain(), 9, (r) => ({ ...r, prevHash: 'a'.repeat(64) })), secrets: secrets() }),
        findings: [{ messageId: 'chainBreak', resource: 'row=9', evidence: { problems: [{ kind: 'chainBreak' }, { kind: 'hashMismatch' }] } }],
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
          { messageId: 'rootMismatch', resource: 'root=1', message: /root 1 does not vouch for audit row 10: its root_hash is not row 10's row_hash/ },
          { messageId: 'rootMismatch', resource: 'root=2', message: /neither a configured root key nor in the historical keys table/ },
          { messageId: 'rootMismatch', resource: 'root=3', message: /row 999 does not exist/ },
          { messageId: 'rootMismatch', resource: 'root=4', message: /signature does not verify/ },
        ],
      },
      {
        name: 'findings are capped; the total and the first broken row are in every one',
        options: { maxFindings: 3 },
        sources: () => {
          const s = chain().snapshot();
          s.rows = s.rows.map((r) => (r.id % 2 === 0 ? { ...r, payload: { tampered: r.id } } : r));
          return { postgres: new FakeAuditDb(s), secrets: secrets() };
        },
        findings: [2, 4, 6].map((id) => ({
          messageId: 'hashMismatch',
          resource: `row=${id}`,
          message: /10 broken row\(s\) in the chain; the first is row 2/,
          evidence: { brokenRowsTotal: 10, reportedRows: 3, firstBrokenRow: 2 },
        })),
      },
    ],
    error: [
      {
        name: 'postgres fails while streaming',
        sources: () => ({ postgres: new FakeAuditDb(chain().snapshot()).fail('streamRows'), secrets: secrets() }),
        error: /postgres: streamRows: connection refused/,
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
  { coveredElsewhere: ['checkpointMismatch'] },
);

describe('checkpoint', () => {
  const verifiedOf = (r: { measurements?: { name: string; value: number }[] }) => r.measurements?.find((m) => m.name === 'receipt_rows_verified')?.value;

  /** Runs the check twice or more over the same (mutable) fake and state. */
  function harness(b: AuditLogBuilder) {
    const db = new FakeAuditDb(b.snapshot());
    const store = secrets();
    const state = new MemoryStateStore();
    const base: CaseBase = { name: 'checkpoint', sources: () => ({ postgres: db, secrets: store }) };
    const run = async (options: Record<string, unknown> = {}) => {
      const outcome = await runCase(check, { ...base, options }, { state, sources: { postgres: db, secrets: store } });
      expectNoSecrets(outcome);
      return outcome.result;
    };
    /** Appends n good rows to the fake, keeping any corruption a test made to earlier rows. */
    const extend = (n: number) => {
      const from = b.rows.length;
      b.receipts(n);
      db.rows = [...db.rows, ...b.snapshot().rows.slice(from)];
    };
    return { db, state, run, extend, builder: b };
  }

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
    const cp = await h.state.get<{ lastId: number; verifiedTotal: number }>('receipt-chain:test');
    expect(cp).toMatchObject({ lastId: 47, verifiedTotal: 47 });
  });

  test('a new row that does not chain to the checkpoint is caught', async () => {
    const h = harness(chain(10));
    await h.run();
    h.extend(3);
    h.db.rows = h.db.rows.map((r) => (r.id === 11 ? reseal({ ...r, prevHash: 'b'.repeat(64) }, receipt) : r));
    const second = await h.run();
    // Re-sealing row 11 changed its hash, so row 12 no longer chains to it either.
    expectFindings(second, [
      { messageId: 'chainBreak', resource: 'row=11', message: /row_hash of row 10/ },
      { messageId: 'chainBreak', resource: 'row=12', message: /row_hash of row 11/ },
    ]);
  });

  test('a broken row stays reported on later runs, and goes when it is repaired', async () => {
    const h = harness(chain(30));
    const good = h.db.rows.find((r) => r.id === 5) as AuditRow;
    h.db.rows = h.db.rows.map((r) => (r.id === 5 ? { ...r, payload: { forged: true } } : r));
    const first = await h.run();
    expectFindings(first, [{ messageId: 'hashMismatch', resource: 'row=5' }]);
    h.extend(4);
    const second = await h.run();
    expect(verifiedOf(second)).toBe(4);
    expectFindings(second, [{ messageId: 'hashMismatch', resource: 'row=5', evidence: { firstBrokenRow: 5, brokenRowsTotal: 1 } }]);
    expect(second.findings[0].id).toBe(first.findings[0].id);
    // Restored from backup: the finding disappears.
    h.db.rows = h.db.rows.map((r) => (r.id === 5 ? good : r));
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
      { messageId: 'checkpointMismatch', resource: 'row=20', message: /row 20 changed after it was verified: its row_hash was/, evidence: { verifiedHash: original.rowHash } },
      // The root over row 20 still holds the original hash: it no longer vouches for the row.
      { messageId: 'rootMismatch', resource: 'root=2' },
    ]);
    const third = await h.run();
    expect(verifiedOf(third)).toBe(0);
    expectFindings(third, [
      { messageId: 'checkpointMismatch', resource: 'row=20' },
      { messageId: 'rootMismatch', resource: 'root=2' },
    ]);
    // A deleted tail is reported the same way.
    h.db.rows = h.db.rows.slice(0, 19);
    const fourth = await h.run();
    expect(verifiedOf(fourth)).toBe(19);
    expectFindings(fourth, [
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
    expectFindings(first, [{ messageId: 'unknownKey', resource: `fingerprint=${old.fingerprint}`, evidence: { rows: 6 } }]);
    h.extend(2);
    const second = await h.run();
    expect(verifiedOf(second)).toBe(2);
    expectFindings(second, [{ messageId: 'unknownKey', resource: `fingerprint=${old.fingerprint}`, evidence: { rows: 6 } }]);
    h.db.historical = [old.historical()];
    const third = await h.run();
    expect(third.status).toBe('pass');
    expect(verifiedOf(third)).toBe(13); // a full pass: those rows were never signature-checked
  });

  test('a broken root stays reported; new roots are checked once', async () => {
    const h = harness(chain(10));
    h.db.roots = h.db.roots.map((r) => ({ ...r, rootHash: h.db.rows[2].rowHash }));
    const first = await h.run();
    expectFindings(first, [
      { messageId: 'rootMismatch', resource: 'root=1' },
      { messageId: 'rootMismatch', resource: 'root=2' },
    ]);
    h.extend(2);
    h.builder.root();
    h.db.roots = [...h.db.roots, h.builder.snapshot().roots[2]];
    const spy = jest.spyOn(h.db, 'rootsAfter');
    const second = await h.run();
    expect(spy).toHaveBeenCalledWith(0);
    expectFindings(second, [
      { messageId: 'rootMismatch', resource: 'root=1' },
      { messageId: 'rootMismatch', resource: 'root=2' },
    ]);
  });

  test('broken roots beyond the findings cap are still reported on later runs', async () => {
    const h = harness(chain(10));
    h.db.roots = h.db.roots.map((r) => ({ ...r, rootHash: h.db.rows[2].rowHash }));
    const both = [
      { messageId: 'rootMismatch', resource: 'root=1' },
      { messageId: 'rootMismatch', resource: 'root=2' },
    ];
    expectFindings(await h.run({ maxFindings: 1 }), both);
    expectFindings(await h.run({ maxFindings: 1 }), both);
  });

  test('rows are streamed in bounded batches', async () => {
    const h = harness(chain(600));
    const r = await h.run({ batchSize: 50 });
    expect(r.status).toBe('pass');
    expect(verifiedOf(r)).toBe(600);
    expect(h.db.largestBatch).toBe(50);
  });

  test('a run cut off by its timeout keeps its progress; the next run continues from there', async () => {
    const b = chain(400);
    const db = new (class extends FakeAuditDb {
      override async *streamRows(afterId: number, opts: { batchSize?: number; signal?: AbortSignal } = {}) {
        for await (const batch of super.streamRows(afterId, opts)) {
          yield batch;
          await new Promise((r) => setTimeout(r, 15));
        }
      }
    })(b.snapshot());
    const state = new MemoryStateStore();
    const c: CaseBase = { name: 'slow', sources: () => ({ postgres: db, secrets: secrets() }), options: { batchSize: 20 }, timeoutMs: 100 };
    const first = await runCase(check, c, { state });
    expect(first.result.status).toBe('error');
    expect(first.result.errorCode).toBe('AUDIT_ERR_TIMEOUT');
    // The cut-off run notices its aborted signal at the next batch and saves what it verified.
    let saved: { lastId: number } | undefined;
    for (let i = 0; i < 50 && !saved; i++) {
      await new Promise((r) => setTimeout(r, 20));
      saved = await state.get<{ lastId: number }>('receipt-chain:test');
    }
    expect(saved?.lastId).toBeGreaterThan(0);
    expect(saved?.lastId).toBeLessThan(400);
    const second = await runCase(check, { ...c, timeoutMs: 30_000 }, { state });
    expect(second.result.status).toBe('pass');
    expect(verifiedOf(second.result)).toBe(400 - (saved?.lastId ?? 0));
  });

  test('the checkpoint holds only public chain data', async () => {
    const h = harness(chain(10));
    await h.run();
    expect(h.state.keys()).toEqual(['receipt-chain:test']);
    expect(h.state.dump()).not.toMatch(/PRIVATE KEY|PUBLIC KEY/);
  });
});
