/**
 * The data model every layer shares: severities, statuses, findings, results and the
 * canonical JSON report. Outputs render from {@link Report}; nothing else is authoritative.
 */

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Higher number = more severe; used for `--fail-on` thresholds and sorting. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = Object.freeze({
  info: 0,
  low: 1,
  medium: 2,
  high: 3,
  critical: 4,
});

export function severityAtLeast(s: Severity, threshold: Severity): boolean {
  return SEVERITY_RANK[s] >= SEVERITY_RANK[threshold];
}

export const STATUSES = ['pass', 'fail', 'error', 'skipped'] as const;
export type Status = (typeof STATUSES)[number];

/** Evidence is structured, redacted data that supports a finding. Never a secret value. */
export type EvidenceValue = string | number | boolean | null | EvidenceValue[] | { [k: string]: EvidenceValue };
export type Evidence = Record<string, EvidenceValue>;

export interface Waiver {
  check: string;
  resource: string;
  justification: string;
  approver: string;
  ticket: string;
  expires: string;
}

export interface Finding {
  /** Stable across runs: hash of check id + resource. */
  id: string;
  check: string;
  severity: Severity;
  /** What the finding is about, as `key=value[,key=value]`, e.g. `service=gateway`. */
  resource: string;
  messageId: string;
  message: string;
  evidence: Evidence;
  remediation: string;
  /** Set when a waiver covers this finding; a waived finding stays visible but does not fail the run. */
  waived?: Waiver;
}

export interface Measurement {
  /** snake_case figure name, exported as `aegis_compliance_<name>` with a `check` label. */
  name: string;
  value: number;
  help: string;
}

export interface CheckResult {
  check: string;
  title: string;
  severity: Severity;
  status: Status;
  durationMs: number;
  /** Why the check could not be evaluated (`error`) or was not run (`skipped`). Never a secret. */
  error: string | null;
  errorCode?: string;
  /** Sources this check touched that failed, for source_up / source_errors_total. */
  sourceErrors?: { source: string; reason: string }[];
  findings: Finding[];
  measurements?: Measurement[];
  startedAt: string;
}

export interface ReportSummary {
  pass: number;
  fail: number;
  error: number;
  skipped: number;
}

export interface Report {
  schemaVersion: 1;
  tool: { name: 'aegis-audit'; version: string };
  deployment: string;
  runId: string;
  configDigest: string;
  startedAt: string;
  finishedAt: string;
  summary: ReportSummary;
  results: CheckResult[];
  /** Waivers that expired: they cover nothing and are reported so someone renews or removes them. */
  expiredWaivers?: Waiver[];
}
