/**
 * The compliance report: one self-contained HTML file (inline CSS, no scripts, no external
 * assets) rendered from the canonical report. All shaping happens here, in a view model;
 * the templates only iterate and print escaped text.
 */
import type { EvidenceValue, Finding, Report, Severity, Status, Waiver } from '../core/types';
import { SEVERITIES, SEVERITY_RANK, STATUSES } from '../core/types';
import { diffReports, type ReportDiff } from './diff';
import type { CheckMetas } from './metas';
import { writeOutputFile } from './fs';
import { cls, fmtTime, safeHref, template } from './render';

export const HTML_REPORT_FILE = 'report.html';

export interface HtmlReportOptions {
  /** Descriptions, runbooks and remediation from the registry, by check id. */
  metas?: CheckMetas;
  /** The previous run of this deployment, for "what changed". */
  previous?: Report;
  /** Turns a runbook's repository path into a link (e.g. `https://git.example.com/aegis-audit/blob/main/`). */
  runbookBaseUrl?: string;
  templatesDir?: string;
}

interface EvidenceRow {
  key: string;
  value: string;
}

interface WaiverView {
  approver: string;
  ticket: string;
  expires: string;
  justification: string;
  resource: string;
  check: string;
}

interface FindingView {
  id: string;
  check: string;
  severity: Severity;
  resource: string;
  message: string;
  evidence: EvidenceRow[];
  /** Only when it differs from the check's remediation (which is shown once per check). */
  remediation?: string;
  waived?: WaiverView;
  note: boolean;
}

function evidenceText(v: EvidenceValue): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function waiverView(w: Waiver): WaiverView {
  return { approver: w.approver, ticket: w.ticket, expires: fmtTime(w.expires), justification: w.justification, resource: w.resource, check: w.check };
}

function findingView(f: Finding, checkRemediation: string | undefined): FindingView {
  return {
    id: f.id,
    check: f.check,
    severity: f.severity,
    resource: f.resource,
    message: f.message,
    evidence: Object.keys(f.evidence)
      .sort()
      .map((key) => ({ key, value: evidenceText(f.evidence[key]) })),
    remediation: f.remediation && f.remediation !== checkRemediation ? f.remediation : undefined,
    waived: f.waived ? waiverView(f.waived) : undefined,
    note: f.severity === 'info',
  };
}

const STATUS_ORDER: Record<Status, number> = { fail: 0, error: 1, skipped: 2, pass: 3 };

function bySeverityThenResource(a: Finding, b: Finding): number {
  return SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0);
}

function diffRow(f: Finding) {
  return { id: f.id, check: f.check, severity: f.severity, resource: f.resource, message: f.message, waived: f.waived !== undefined };
}

/** The view model of the report page (exported for tests: the counts the page shows). */
export function reportView(report: Report, opts: HtmlReportOptions = {}) {
  const metas = opts.metas;
  const checks = [...report.results]
    .sort(
      (a, b) =>
        STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
        SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
        (a.check < b.check ? -1 : a.check > b.check ? 1 : 0),
    )
    .map((r) => {
      const meta = metas?.get(r.check);
      const remediation = meta?.remediation;
      const findings = [...r.findings].sort(bySeverityThenResource);
      const open = findings.filter((f) => !f.waived && f.severity !== 'info').length;
      const waived = findings.filter((f) => f.waived).length;
      const notes = findings.filter((f) => !f.waived && f.severity === 'info').length;
      return {
        anchor: `check-${cls(r.check)}`,
        check: r.check,
        title: r.title,
        status: r.status,
        severity: r.severity,
        description: meta?.description,
        remediation,
        runbook: meta?.runbook,
        runbookHref: safeHref(meta?.runbook, opts.runbookBaseUrl),
        durationMs: r.durationMs,
        error: r.error,
        errorCode: r.errorCode,
        // Findings gathered before an error are kept as evidence; the page says so.
        partial: r.status === 'error' && findings.length > 0,
        findings: findings.map((f) => findingView(f, remediation)),
        counts: { total: findings.length, open, waived, notes },
      };
    });

  const all = report.results.flatMap((r) => r.findings);
  const bySeverity = SEVERITIES.map((severity) => {
    const fs = all.filter((f) => f.severity === severity);
    const waived = fs.filter((f) => f.waived).length;
    return { severity, total: fs.length, open: fs.length - waived, waived };
  });
  const waivedFindings = all.filter((f) => f.waived).sort(bySeverityThenResource);

  const diff: ReportDiff = diffReports(opts.previous, report);
  const overall =
    report.summary.fail > 0 ? 'FAIL' : report.summary.error > 0 ? 'NOT EVALUATED' : report.results.length === 0 ? 'NO CHECKS' : 'PASS';

  return {
    deployment: report.deployment,
    runId: report.runId,
    configDigest: report.configDigest,
    tool: report.tool,
    startedAt: fmtTime(report.startedAt),
    finishedAt: fmtTime(report.finishedAt),
    overall,
    overallCls: cls(overall),
    statusSummary: STATUSES.map((status) => ({ status, count: report.summary[status] })),
    checkCount: report.results.length,
    bySeverity,
    totals: {
      findings: all.length,
      waived: waivedFindings.length,
      open: all.filter((f) => !f.waived && f.severity !== 'info').length,
      notes: all.filter((f) => !f.waived && f.severity === 'info').length,
    },
    checks,
    waived: waivedFindings.map((f) => ({ ...diffRow(f), waiver: waiverView(f.waived as Waiver) })),
    expiredWaivers: (report.expiredWaivers ?? []).map(waiverView),
    diff: {
      hasPrevious: diff.hasPrevious,
      previousRunId: diff.previousRunId,
      previousFinishedAt: fmtTime(diff.previousFinishedAt),
      new: diff.new.sort(bySeverityThenResource).map(diffRow),
      resolved: diff.resolved.sort(bySeverityThenResource).map(diffRow),
      open: diff.open.sort(bySeverityThenResource).map(diffRow),
      unverified: diff.unverified.sort(bySeverityThenResource).map(diffRow),
    },
  };
}

export function renderHtmlReport(report: Report, opts: HtmlReportOptions = {}): string {
  return template('report', opts.templatesDir)(reportView(report, opts));
}

/** Writes `<dir>/report.html`; returns its path. */
export async function writeHtmlReport(report: Report, dir: string, opts: HtmlReportOptions = {}): Promise<string> {
  return writeOutputFile(dir, HTML_REPORT_FILE, renderHtmlReport(report, opts));
}
