/**
 * The daemon's view of "the latest report": checks run on their own schedules, so the
 * report served at /report.json merges runs, keeping the latest result of each check.
 */
import { buildReport } from '../core/report';
import type { CheckResult, Report } from '../core/types';

export class LatestResults {
  private readonly results = new Map<string, CheckResult>();
  private last: Report | undefined;

  /** Records a run; results of checks outside `planned` are dropped (no longer configured). */
  record(report: Report, planned: ReadonlySet<string>): void {
    for (const r of report.results) if (planned.has(r.check)) this.results.set(r.check, r);
    for (const id of [...this.results.keys()]) if (!planned.has(id)) this.results.delete(id);
    this.last = report;
  }

  /** The merged report, or undefined before the first run finished. */
  report(): Report | undefined {
    const last = this.last;
    if (!last) return undefined;
    const results = [...this.results.values()].sort((a, b) => a.check.localeCompare(b.check));
    const starts = results.map((r) => Date.parse(r.startedAt)).filter(Number.isFinite);
    const startedAt = starts.length > 0 ? new Date(Math.min(...starts)) : new Date(last.startedAt);
    return buildReport({
      deployment: last.deployment,
      runId: last.runId,
      configDigest: last.configDigest,
      startedAt,
      finishedAt: new Date(last.finishedAt),
      results,
      expiredWaivers: last.expiredWaivers,
    });
  }
}
