/**
 * Leader election between daemon replicas that share a Postgres: a session-level
 * `pg_try_advisory_lock(key)` held on a dedicated long-lived connection. Postgres releases
 * the lock when that session ends (process killed, connection cut), so a standby that
 * retries on its next tick takes over without any lease bookkeeping.
 *
 * The holder confirms its session is alive before each run (`SELECT 1` on the lock
 * connection): a leader whose connection died stops running checks at once, rather than
 * running them alongside the replica that took over.
 */
import { Client } from 'pg';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';

export interface LeaderElection {
  /** Whether this replica may run checks now; tries to take the lock when it does not hold it. */
  ensure(): Promise<boolean>;
  isLeader(): boolean;
  close(): Promise<void>;
}

/** Without `leader_lock` a daemon is alone and always leads. */
export class SoloLeader implements LeaderElection {
  async ensure(): Promise<boolean> {
    return true;
  }
  isLeader(): boolean {
    return true;
  }
  async close(): Promise<void> {}
}

export interface AdvisoryLockOptions {
  url: string;
  key: number;
  logger: Logger;
  /** Told on every change of leadership. */
  onChange?: (leader: boolean) => void;
  connectTimeoutMs?: number;
}

export class AdvisoryLockLeader implements LeaderElection {
  private client: Client | undefined;
  private leader = false;
  private closed = false;
  private inFlight: Promise<boolean> | undefined;

  constructor(private readonly opts: AdvisoryLockOptions) {}

  isLeader(): boolean {
    return this.leader;
  }

  /** The server pid of the lock session, for operators (and tests that cut it). */
  backendPid(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  ensure(): Promise<boolean> {
    // Concurrent ticks share one attempt: two connections of ours must never race for the lock.
    this.inFlight ??= this.attempt().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async attempt(): Promise<boolean> {
    if (this.closed) return false;
    try {
      if (this.client && this.leader) {
        await this.client.query('SELECT 1');
        return true;
      }
      if (!this.client) this.client = await this.connect();
      const r = await this.client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [this.opts.key]);
      this.setLeader(r.rows[0]?.locked === true);
      return this.leader;
    } catch (e) {
      this.opts.logger.warn({ err: describeError(e) }, 'Leader lock connection failed; standing by');
      this.drop();
      return false;
    }
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      connectionString: this.opts.url,
      connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 5_000,
      keepAlive: true,
      application_name: 'aegis-audit-leader',
    });
    // An 'error' without a listener would crash the process; losing the session loses the lock.
    client.on('error', (e) => {
      if (this.client !== client) return;
      this.opts.logger.warn({ err: describeError(e) }, 'Leader lock connection lost');
      this.drop();
    });
    client.on('end', () => {
      if (this.client === client) this.drop();
    });
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    return client;
  }

  private drop(): void {
    const c = this.client;
    this.client = undefined;
    this.setLeader(false);
    if (c) c.end().catch(() => undefined);
  }

  private setLeader(v: boolean): void {
    if (v === this.leader) return;
    this.leader = v;
    this.opts.logger.info({ leader: v, key: this.opts.key }, v ? 'Acquired leader lock' : 'Not the leader');
    this.opts.onChange?.(v);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inFlight?.catch(() => undefined);
    const c = this.client;
    this.client = undefined;
    this.setLeader(false);
    // Ending the session releases the lock; the next replica takes it on its next tick.
    if (c) await c.end().catch(() => undefined);
  }
}
