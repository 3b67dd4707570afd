import { createHash, createPublicKey, verify } from 'node:crypto';
import { canonicalJson, canonicalRow, ChainWriter, computeRowHash, GENESIS_HASH, type RowSpec } from '../../src/sandbox/chain';
import { fingerprintOfPublicKeyPem, keyPairFromSeed } from '../../src/sandbox/keys';
import { DEFAULT_TABLES } from '../../src/sandbox/schema';
import { PRIVATE_LABEL } from '../helpers/pem';

describe('keys', () => {
  test('fingerprint is sha256: + hex SHA-256 of the SPKI DER, and PEMs are PKCS#8 / SPKI', () => {
    const k = keyPairFromSeed(Buffer.alloc(32, 3));
    const der = createPublicKey(k.privateKeyPem).export({ type: 'spki', format: 'der' });
    expect(k.fingerprint).toBe('sha256:' + createHash('sha256').update(der).digest('hex'));
    expect(k.privateKeyPem).toMatch(new RegExp(`^-----BEGIN ${PRIVATE_LABEL}-----\\n[A-Za-z0-9+/=\\n]+-----END ${PRIVATE_LABEL}-----\\n$`));
    expect(k.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(fingerprintOfPublicKeyPem(k.publicKeyPem)).toBe(k.fingerprint);
  });

  test('signatures verify with node:crypto and the same seed gives the same key', () => {
    const k = keyPairFromSeed(Buffer.alloc(32, 9));
    const msg = createHash('sha256').update('x').digest();
    expect(verify(null, msg, createPublicKey(k.publicKeyPem), k.sign(msg))).toBe(true);
    expect(keyPairFromSeed(Buffer.alloc(32, 9)).fingerprint).toBe(k.fingerprint);
    expect(keyPairFromSeed(Buffer.alloc(32, 8)).fingerprint).not.toBe(k.fingerprint);
  });
});

describe('canonical form', () => {
  test('sorts keys at every level, keeps arrays in order, no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 'é' }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":"é","z":1}]},"b":1}');
  });

  test('canonical row names action, created_at with ms, id as a number and payload', () => {
    const s = canonicalRow({ id: 7, createdAt: new Date('2026-11-22T10:00:00Z'), action: 'secret_rotated', payload: { secret: 'JWT_SECRET_KEY' } });
    expect(s).toBe('{"action":"secret_rotated","created_at":"2026-11-22T10:00:00.000Z","id":7,"payload":{"secret":"JWT_SECRET_KEY"}}');
    expect(computeRowHash(GENESIS_HASH, s)).toBe(createHash('sha256').update(GENESIS_HASH + s, 'utf8').digest('hex'));
  });
});

describe('ChainWriter.buildRow', () => {
  const key = keyPairFromSeed(Buffer.alloc(32, 1));
  const pub = createPublicKey(key.publicKeyPem);
  const rootKey = keyPairFromSeed(Buffer.alloc(32, 2));
  const spec = (i: number, extra: Partial<RowSpec> = {}): RowSpec => ({
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    action: 'receipt_issued',
    payload: { n: i, nested: { b: 'x', a: ['東京'] } },
    key,
    ...extra,
  });
  const writer = () => new ChainWriter({ schema: 'public', tables: { ...DEFAULT_TABLES }, rootKey, rootEvery: 10 });
  const sigOk = (rowHash: string, sig: string) => verify(null, Buffer.from(rowHash, 'hex'), pub, Buffer.from(sig, 'base64'));

  test('chains from 64 zeros, hashes prev_hash + canonical, signs the raw hash bytes', () => {
    const w = writer();
    const r1 = w.buildRow(spec(1));
    const r2 = w.buildRow(spec(2));
    expect(r1.prevHash).toBe('0'.repeat(64));
    expect(r2.prevHash).toBe(r1.rowHash);
    expect(r2.rowHash).toBe(createHash('sha256').update(r1.rowHash + canonicalRow(r2), 'utf8').digest('hex'));
    expect(sigOk(r1.rowHash, r1.signature) && sigOk(r2.rowHash, r2.signature)).toBe(true);
    expect(r1.keyFingerprint).toBe(key.fingerprint);
  });

  test('tampering breaks exactly one property of the row', () => {
    const w = writer();
    w.buildRow(spec(1));
    const bad = w.buildRow(spec(2, { tamper: { kind: 'badSignature' } }));
    expect(bad.rowHash).toBe(computeRowHash(bad.prevHash, canonicalRow(bad)));
    expect(sigOk(bad.rowHash, bad.signature)).toBe(false);

    const edited = w.buildRow(spec(3, { tamper: { kind: 'hashMismatch', storedPayload: { n: 999 } } }));
    expect(edited.prevHash).toBe(bad.rowHash);
    expect(edited.rowHash).not.toBe(computeRowHash(edited.prevHash, canonicalRow(edited)));
    expect(sigOk(edited.rowHash, edited.signature)).toBe(true);

    const broken = w.buildRow(spec(4, { tamper: { kind: 'chainBreak', prevHash: 'ab'.repeat(32) } }));
    expect(broken.prevHash).not.toBe(edited.rowHash);
    expect(broken.rowHash).toBe(computeRowHash(broken.prevHash, canonicalRow(broken)));
    expect(sigOk(broken.rowHash, broken.signature)).toBe(true);
    // The chain continues from the broken row: only that one link is wrong.
    expect(w.buildRow(spec(5)).prevHash).toBe(broken.rowHash);
  });

  test('rejects a root interval that is not a positive integer', () => {
    expect(() => new ChainWriter({ schema: 'public', tables: { ...DEFAULT_TABLES }, rootKey, rootEvery: 0 })).toThrow(/rootEvery/);
  });
});
