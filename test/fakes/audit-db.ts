/** An in-memory AuditDb (src/core/sources.ts) over arrays of rows. */
import type { ApiKeyRow, AuditDb, AuditRow, FingerprintUsage, HistoricalKey, RootRow } from '../../src/core/sources';
import { Failures } from './failures';

export type AuditDbMethod =
  | 'recentRows'
  | 'recentRoots'
  | 'historicalKeys'
  | 'rowsByAction'
  | 'fingerprintUsage'
  | 'rootFingerprintUsage'
  | 'streamRows'
  | 'rowById'
  | 'rootsAfter'
  | 'firstRow'
  | 'apiKeys';

export interface FakeAuditDbData {
  rows?: AuditRow[];
  roots?: RootRow[];
  historical?: HistoricalKey[];
  apiKeys?: ApiKeyRow[];
}

function usage(items: { id: number; createdAt: Date; keyFingerprint: string }[]): FingerprintUsage[] {
  const by = new Map<string, FingerprintUsage>();
  for (const r of items) {
    const u = by.get(r.keyFingerprint);
    if (!u) by.set(r.keyFingerprint, { fingerprint: r.keyFingerprint, rows: 1, firstId: r.id, lastId: r.id, lastAt: r.createdAt });
    else {
      u.rows++;
      u.firstId = Math.min(u.firstId, r.id);
      if (r.id > u.lastId) {
        u.lastId = r.id;
        u.lastAt = r.createdAt;
      }
    }
  }
  return [...by.values()].sort((a, b) => a.lastId - b.lastId);
}

export class FakeAuditDb implements AuditDb {
  historicalKeysTable = 'transparency_historical_keys';
  rows: AuditRow[];
  roots: RootRow[];
  historical: HistoricalKey[];
  keys: ApiKeyRow[];
  readonly failures = new Failures<AuditDbMethod>('postgres');
  /** Rows handed out by streamRows since construction: what an incremental run costs. */
  streamedRows = 0;
  /** Largest batch streamRows yielded (memory stays bounded by it). */
  largestBatch = 0;

  constructor(data: FakeAuditDbData = {}) {
    this.rows = [...(data.rows ?? [])].sort((a, b) => a.id - b.id);
    this.roots = [...(data.roots ?? [])].sort((a, b) => a.id - b.id);
    this.historical = [...(data.historical ?? [])];
    this.keys = [...(data.apiKeys ?? [])];
  }

  /** Makes `method` throw (default: postgres is unavailable). Returns this, for tables. */
  fail(method: AuditDbMethod, error?: Error): this {
    this.failures.set(method, error);
    return this;
  }

  async recentRows(limit: number): Promise<AuditRow[]> {
    this.failures.check('recentRows');
    return this.rows.slice(-limit).reverse();
  }

  async recentRoots(limit: number): Promise<RootRow[]> {
    this.failures.check('recentRoots');
    return this.roots.slice(-limit).reverse();
  }

  async historicalKeys(): Promise<HistoricalKey[]> {
    this.failures.check('historicalKeys');
    return [...this.historical];
  }

  async rowsByAction(actions: string[]): Promise<AuditRow[]> {
    this.failures.check('rowsByAction');
    return this.rows.filter((r) => actions.includes(r.action));
  }

  async fingerprintUsage(): Promise<FingerprintUsage[]> {
    this.failures.check('fingerprintUsage');
    return usage(this.rows);
  }

  async rootFingerprintUsage(): Promise<FingerprintUsage[]> {
    this.failures.check('rootFingerprintUsage');
    return usage(this.roots);
  }

  async *streamRows(afterId: number, opts: { batchSize?: number; signal?: AbortSignal } = {}): AsyncIterable<AuditRow[]> {
    this.failures.check('streamRows');
    const size = opts.batchSize ?? 5000;
    const after = this.rows.filter((r) => r.id > afterId);
    for (let i = 0; i < after.length; i += size) {
      if (opts.signal?.aborted) return;
      const batch = after.slice(i, i + size);
      this.streamedRows += batch.length;
      this.largestBatch = Math.max(this.largestBatch, batch.length);
      yield batch;
    }
  }

  async rowById(id: number): Promise<AuditRow | undefined> {
    this.failures.check('rowById');
    return this.rows.find((r) => r.id === id);
  }

  async rootsAfter(afterId: number): Promise<RootRow[]> {
    this.failures.check('rootsAfter');
    return this.roots.filter((r) => r.id > afterId);
  }

  async firstRow(): Promise<AuditRow | undefined> {
    this.failures.check('firstRow');
    return this.rows[0];
  }

  async *apiKeys(): AsyncIterable<ApiKeyRow> {
    this.failures.check('apiKeys');
    yield* this.keys;
  }
}
