/**
 * A replica's own series when replicas share checks through the job queue. Every replica
 * exports these, labelled with its `replica` name; none carries check results. The
 * compliance series (aegis_compliance_*) of a deployment carry results only on the leader,
 * read from the shared latest results, so one failing check is one series and one alert
 * however many replicas are scraped.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export const QUEUE_METRIC_PREFIX = 'aegis_audit_queue_';

export class QueueWorkerMetrics {
  private readonly jobs: Counter<'replica' | 'outcome'>;
  private readonly seconds: Counter<'replica'>;
  private readonly enqueued: Counter<'replica'>;

  constructor(
    registry: Registry,
    readonly replica: string,
    running: () => number,
  ) {
    const registers = [registry];
    const p = QUEUE_METRIC_PREFIX;
    this.jobs = new Counter({
      name: `${p}jobs_total`,
      help: 'Check runs this replica took from the queue, by outcome: the check status, or crashed (the run failed before its check reported; the job is retried).',
      labelNames: ['replica', 'outcome'] as const,
      registers,
    });
    this.seconds = new Counter({
      name: `${p}job_seconds_total`,
      help: 'Time this replica spent running checks taken from the queue.',
      labelNames: ['replica'] as const,
      registers,
    });
    this.enqueued = new Counter({
      name: `${p}enqueued_total`,
      help: 'Check runs this replica enqueued as the scheduler (only the leader schedules).',
      labelNames: ['replica'] as const,
      registers,
    });
    new Gauge({
      name: `${p}jobs_running`,
      help: 'Checks this replica is running now.',
      labelNames: ['replica'] as const,
      registers,
      collect() {
        this.set({ replica }, running());
      },
    });
    this.seconds.inc({ replica }, 0);
    this.enqueued.inc({ replica }, 0);
  }

  ran(outcome: string, durationMs: number): void {
    this.jobs.inc({ replica: this.replica, outcome });
    this.seconds.inc({ replica: this.replica }, durationMs / 1000);
  }

  scheduled(n: number): void {
    this.enqueued.inc({ replica: this.replica }, n);
  }
}
