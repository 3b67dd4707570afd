/**
 * Builds a correctly chained and signed audit log (node:crypto ed25519), so a test can
 * corrupt exactly one row and see exactly one finding. The hashing is implemented here
 * independently of checks/lib (a replacer-based canonical JSON), so a bug in the check's
 * canonical form cannot be mirrored by the data it is tested against.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { AuditRow, HistoricalKey, RootRow } from '../../src/core/sources';
import type { FakeSigningKey } from './secret-store';

export class TestKey {
  readonly fingerprint: string;
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
  readonly #private: KeyObject;

  private constructor(priv: KeyObject, pub: KeyObject) {
    this.#private = priv;
    this.privateKeyPem = priv.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.publicKeyPem = pub.export({ type: 'spki', format: 'pem' }).toString();
    this.fingerprint = 'sha256:' + createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
  }

  static generate(): TestKey {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return new TestKey(privateKey, publicKey);
  }

  /** base64 ed25519 signature over the 32 raw bytes of a hex hash. */
  signHash(hexHash: string): string {
    return sign(null, Buffer.from(hexHash, 'hex'), this.#private).toString('base64');
  }

  /** As a configured signing key holder (the secret store's view). */
  holder(key: 'receipt' | 'root', provider: FakeSigningKey['provider'] = 'env_file'): FakeSigningKey {
    return { key, provider, fingerprint: this.fingerprint, publicKeyPem: this.publicKeyPem, privateKeyPem: this.privateKeyPem };
  }

  /** As a row of transparency_historical_keys. */
  historical(promotedAt: Date | null = null): HistoricalKey {
    return { fingerprint: this.fingerprint, publicKey: this.publicKeyPem, promotedAt };
  }
}

function sortKeys(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return v;
}

/** The chain's hash of a row, computed the test's own way. */
export function referenceRowHash(prevHash: string, row: { id: number; createdAt: Date; action: string; payload: unknown }): string {
  const canonical = JSON.stringify(
    { action: row.action, created_at: row.createdAt.toISOString(), id: row.id, payload: row.payload },
    sortKeys,
  );
  return createHash('sha256').update(prevHash + canonical, 'utf8').digest('hex');
}

const ZERO = '0'.repeat(64);

export class AuditLogBuilder {
  readonly rows: AuditRow[] = [];
  readonly roots: RootRow[] = [];
  receiptKey: TestKey;
  rootKey: TestKey;
  #clock: number;
  #nextId: number;
  readonly #stepMs: number;

  constructor(opts: { receiptKey?: TestKey; rootKey?: TestKey; start?: Date; stepMs?: number; firstId?: number } = {}) {
    this.receiptKey = opts.receiptKey ?? TestKey.generate();
    this.rootKey = opts.rootKey ?? TestKey.generate();
    this.#clock = (opts.start ?? new Date('2026-11-01T00:00:00.000Z')).getTime();
    this.#stepMs = opts.stepMs ?? 60_000;
    this.#nextId = opts.firstId ?? 1;
  }

  /** Appends one row, chained to the last and signed by the current receipt key (or `key`). */
  append(action = 'receipt_issued', payload: unknown = {}, opts: { key?: TestKey; at?: Date } = {}): AuditRow {
    const id = this.#nextId++;
    const createdAt = opts.at ?? new Date(this.#clock);
    this.#clock = Math.max(this.#clock, createdAt.getTime()) + this.#stepMs;
    const prevHash = this.rows.length ? this.rows[this.rows.length - 1].rowHash : ZERO;
    const rowHash = referenceRowHash(prevHash, { id, createdAt, action, payload });
    const key = opts.key ?? this.receiptKey;
    const row: AuditRow = { id, createdAt, action, payload, prevHash, rowHash, signature: key.signHash(rowHash), keyFingerprint: key.fingerprint };
    this.rows.push(row);
    return row;
  }

  /** Appends `n` ordinary receipt rows. */
  receipts(n: number): this {
    for (let i = 0; i < n; i++) this.append('receipt_issued', { request: `req-${this.#nextId}`, n: i, nested: { b: 1, a: [i, 'x'] } });
    return this;
  }

  /** Rotates a key: a key_rotated row (signed by the outgoing receipt key), then the new key signs. */
  rotate(key: 'receipt' | 'root', next: TestKey = TestKey.generate(), at?: Date): TestKey {
    const old = key === 'receipt' ? this.receiptKey : this.rootKey;
    this.append('key_rotated', { key, old_fingerprint: old.fingerprint, new_fingerprint: next.fingerprint }, { at });
    if (key === 'receipt') this.receiptKey = next;
    else this.rootKey = next;
    return old;
  }

  /** A secret_rotated row for a named secret. */
  secretRotated(secret: string, at?: Date): AuditRow {
    return this.append('secret_rotated', { secret }, { at });
  }

  /** A transparency root over the latest row (or `upToId`), signed by the root key. */
  root(upToId?: number): RootRow {
    const target = upToId === undefined ? this.rows[this.rows.length - 1] : this.rows.find((r) => r.id === upToId);
    if (!target) throw new Error(`no row ${upToId}`);
    const root: RootRow = {
      id: this.roots.length + 1,
      createdAt: new Date(this.#clock),
      upToId: target.id,
      rootHash: target.rowHash,
      signature: this.rootKey.signHash(target.rowHash),
      keyFingerprint: this.rootKey.fingerprint,
    };
    this.roots.push(root);
    return root;
  }

  /** Deep copies, so one test's corruption never leaks into another's data. */
  snapshot(): { rows: AuditRow[]; roots: RootRow[] } {
    return {
      rows: this.rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt), payload: structuredClone(r.payload) })),
      roots: this.roots.map((r) => ({ ...r, createdAt: new Date(r.createdAt) })),
    };
  }
}
