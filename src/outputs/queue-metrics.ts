/**
 * A replica's own series when replicas share checks through the job queue. Every replica
 * exports these, labelled with its `replica` name; none carries check results. The
 * compliance series (aegis_compliance_*) of a deployment carry results only on the leader,
 * read from the shared latest results, so one failing check is one series and one alert
 * however many replicas are scraped.
 *
 * The figures are kept by ComplianceMetrics as plain data (so its mirror on the daemon's HTTP
 * thread has them as they change); registerReplicaMetrics renders them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ComplianceMetrics, ReplicaState } from './metrics';

export const QUEUE_METRIC_PREFIX = 'aegis_audit_queue_';

/** The queue's series, read from `replicas` at each render. */
export function registerReplicaMetrics(registry: Registry, replicas: ReadonlyMap<string, ReplicaState>): void {
  const registers = [registry];
  const p = QUEUE_METRIC_PREFIX;
  new Counter({
    name: `${p}jobs_total`,
    help: 'Check runs this replica took from the queue, by outcome: the check status, or crashed (the run failed before its check reported; the job is retried).',
    labelNames: ['replica', 'outcome'] as const,
    registers,
    collect() {
      this.reset();
      for (const [replica, r] of replicas) for (const [outcome, n] of r.jobs) this.inc({ replica, outcome }, n);
    },
  });
  new Counter({
    name: `${p}job_seconds_total`,
    help: 'Time this replica spent running checks taken from the queue.',
    labelNames: ['replica'] as const,
    registers,
    collect() {
      this.reset();
      for (const [replica, r] of replicas) this.inc({ replica }, r.seconds);
    },
  });
  new Counter({
    name: `${p}enqueued_total`,
    help: 'Check runs this replica enqueued as the scheduler (only the leader schedules).',
    labelNames: ['replica'] as const,
    registers,
    collect() {
      this.reset();
      for (const [replica, r] of replicas) this.inc({ replica }, r.enqueued);
    },
  });
  new Gauge({
    name: `${p}jobs_running`,
    help: 'Checks this replica is running now.',
    labelNames: ['replica'] as const,
    registers,
    collect() {
      this.reset();
      for (const [replica, r] of replicas) this.set({ replica }, r.running);
    },
  });
}

export class QueueWorkerMetrics {
  constructor(
    private readonly metrics: ComplianceMetrics,
    readonly replica: string,
  ) {
    metrics.replica(replica);
  }

  ran(outcome: string, durationMs: number): void {
    this.metrics.replicaRan(this.replica, outcome, durationMs);
  }

  scheduled(n: number): void {
    this.metrics.replicaScheduled(this.replica, n);
  }

  /** Checks this replica runs now. */
  running(n: number): void {
    this.metrics.replicaRunning(this.replica, n);
  }
}
