import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KnownSecrets } from './secret';
import type { CheckResult, Report, ReportSummary, Severity, Waiver } from './types';
import { severityAtLeast } from './types';

/** The package's version, found by walking up from this file (works from src/ and from dist/). */
export const TOOL_VERSION: string = (() => {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'aegis-audit' && pkg.version) return pkg.version;
    } catch {
      // not here; keep walking up
    }
    dir = dirname(dir);
  }
  return '0.0.0';
})();

export function summarize(results: readonly CheckResult[]): ReportSummary {
  const s: ReportSummary = { pass: 0, fail: 0, error: 0, skipped: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

export function buildReport(input: {
  deployment: string;
  runId: string;
  configDigest: string;
  startedAt: Date;
  finishedAt: Date;
  results: CheckResult[];
  expiredWaivers?: Waiver[];
}): Report {
  return {
    schemaVersion: 1,
    tool: { name: 'aegis-audit', version: TOOL_VERSION },
    deployment: input.deployment,
    runId: input.runId,
    configDigest: input.configDigest,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    summary: summarize(input.results),
    results: input.results,
    ...(input.expiredWaivers && input.expiredWaivers.length > 0 ? { expiredWaivers: input.expiredWaivers } : {}),
  };
}

/**
 * The report with every secret `known` holds scrubbed from the text a run composed — each
 * result's error, each finding's message, resource and evidence — as the runner scrubs a
 * finding when it is reported. Structural fields (check ids, statuses, finding ids) are left
 * alone: a secret sharing 8 characters with a check id must not rename the check.
 */
export function scrubReport(report: Report, known: KnownSecrets): Report {
  if (known.size === 0) return report;
  return {
    ...report,
    results: report.results.map((r) => ({
      ...r,
      error: r.error === null ? null : known.scrub(r.error),
      findings: r.findings.map((f) => ({ ...f, message: known.scrub(f.message), resource: known.scrub(f.resource), evidence: known.scrubDeep(f.evidence) })),
    })),
  };
}

export const EXIT = { OK: 0, FINDINGS: 1, USAGE: 2, NOT_EVALUATED: 3 } as const;

/**
 * 0: every evaluated check passes at or above `failOn`; 1: a finding at or above it
 * (waived findings don't count); 3: a check could not be evaluated and nothing failed.
 */
export function exitCodeFor(report: Report, failOn: Severity): number {
  const failing = report.results.some((r) =>
    r.findings.some((f) => !f.waived && f.severity !== 'info' && severityAtLeast(f.severity, failOn)),
  );
  if (failing) return EXIT.FINDINGS;
  if (report.results.some((r) => r.status === 'error')) return EXIT.NOT_EVALUATED;
  return EXIT.OK;
}
