/** An in-memory AuditDb (src/core/sources.ts) over arrays of rows. */
import type { ApiKeyRow, AuditDb, AuditRow, ChainExtent, ChainLocation, FingerprintUsage, HistoricalKey, RootRow, StreamRowsOptions } from '../../src/core/sources';
import { stopIfAborted } from '../../src/sources/errors';
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
  | 'chainLocation'
  | 'chainExtent'
  | 'apiKeys';

export interface FakeAuditDbData {
  rows?: AuditRow[];
  roots?: RootRow[];
  historical?: HistoricalKey[];
  apiKeys?: ApiKeyRow[];
  location?: Partial<ChainLocation>;
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
  /** Where the chain lives; a test moves it to another "server" or "database" by editing this. */
  location: ChainLocation;
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
    this.location = { systemIdentifier: '7000000000000000001', database: 'audit', databaseOid: 16384, table: 'public.audit_log', ...data.location };
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

  async *streamRows(afterId: number, opts: StreamRowsOptions = {}): AsyncIterable<AuditRow[]> {
    this.failures.check('streamRows');
    const size = opts.batchSize ?? 5000;
    const after = this.rows.filter((r) => r.id > afterId && (opts.untilId === undefined || r.id <= opts.untilId)).slice(0, opts.limit ?? Infinity);
    for (let i = 0; i < after.length; i += size) {
      stopIfAborted(opts.signal, 'postgres', 'streaming audit rows');
      // Each batch is read when asked for, as the real reader does: a failure set mid-pass hits the next batch.
      if (i > 0) this.failures.check('streamRows');
      const batch = after.slice(i, i + size);
      this.streamedRows += batch.length;
      this.largestBatch = Math.max(this.largestBatch, batch.length);
      yield batch;
    }
  }

  async chainLocation(): Promise<ChainLocation> {
    this.failures.check('chainLocation');
    return { ...this.location };
  }

  async chainExtent(afterId: number, opts: { count?: boolean } = {}): Promise<ChainExtent> {
    this.failures.check('chainExtent');
    const lastId = this.rows.length ? this.rows[this.rows.length - 1].id : null;
    if (lastId === null || lastId <= afterId) return { rowsAfter: 0, lastId };
    return { rowsAfter: opts.count === false ? null : this.rows.filter((r) => r.id > afterId).length, lastId };
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
