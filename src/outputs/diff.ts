/**
 * What changed since the previous run, by stable finding id (hash of check + resource, so
 * the same problem keeps its id run after run).
 */
import type { Finding, Report } from '../core/types';

export interface ReportDiff {
  /** False on a first run: everything would look "new", so the report says there is no baseline. */
  hasPrevious: boolean;
  previousRunId?: string;
  previousFinishedAt?: string;
  /** In this run, not in the previous one. */
  new: Finding[];
  /** In the previous run; gone now, and its check was evaluated this run (pass or fail). */
  resolved: Finding[];
  /** In both runs. */
  open: Finding[];
  /**
   * In the previous run, but their check was not evaluated this run (error, skipped, or not
   * run): we cannot say they are resolved, so they are listed apart rather than as good news.
   */
  unverified: Finding[];
}

function findingsById(report: Report): Map<string, Finding> {
  const m = new Map<string, Finding>();
  for (const r of report.results) for (const f of r.findings) m.set(f.id, f);
  return m;
}

export function diffReports(previous: Report | undefined, current: Report): ReportDiff {
  const now = findingsById(current);
  if (!previous) return { hasPrevious: false, new: [...now.values()], resolved: [], open: [], unverified: [] };

  const before = findingsById(previous);
  const evaluated = new Set(current.results.filter((r) => r.status === 'pass' || r.status === 'fail').map((r) => r.check));
  const diff: ReportDiff = {
    hasPrevious: true,
    previousRunId: previous.runId,
    previousFinishedAt: previous.finishedAt,
    new: [],
    resolved: [],
    open: [],
    unverified: [],
  };
  for (const [id, f] of now) (before.has(id) ? diff.open : diff.new).push(f);
  for (const [id, f] of before) {
    if (now.has(id)) continue;
    (evaluated.has(f.check) ? diff.resolved : diff.unverified).push(f);
  }
  return diff;
}
