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
import { cls, fmtTime, runbookHref, template } from './render';

export const HTML_REPORT_FILE = 'report.html';

export interface HtmlReportOptions {
  /** Descriptions, runbooks and remediation from the registry, by check id. */
  metas?: CheckMetas;
  /** The previous run of this deployment, for "what changed". */
  previous?: Report;
  /** Turns a runbook's repository path into a link (e.g. `https://git.example.com/aegis-audit/blob/main/`). */
  runbookBaseUrl?: string;
  /** The folder the page is written to: without a base URL, runbooks are linked relative to it. */
  reportDir?: string;
  /** Open findings per severity of the last runs, oldest first, this run last (HistoryStore.recent). */
  trend?: readonly TrendPoint[];
  templatesDir?: string;
}

/** One run's open (not waived, not info) findings by severity. */
export interface TrendPoint {
  runId: string;
  finishedAt: string;
  open: Record<Severity, number>;
}

/**
 * A key/value row of a finding's evidence: scalars as text, lists of scalars as a list, an
 * object one level down as its own small key/value table; JSON only below that.
 */
interface EvidenceRow {
  key: string;
  value?: string;
  list?: string[];
  table?: { key: string; value: string }[];
  /** A list of flat objects, as rows under the union of their keys. */
  grid?: { columns: string[]; rows: { cells: string[] }[] };
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
  /** Not in the previous run (only when there is one). */
  isNew: boolean;
}

function scalarText(v: EvidenceValue): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

const isScalar = (v: EvidenceValue) => v === null || typeof v !== 'object';

function evidenceRow(key: string, v: EvidenceValue): EvidenceRow {
  if (isScalar(v)) return { key, value: scalarText(v) };
  if (Array.isArray(v)) {
    if (v.length === 0) return { key, value: '(none)' };
    if (v.every(isScalar)) return { key, list: v.map(scalarText) };
    const flat = v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x) && Object.values(x).every(isScalar));
    if (flat) {
      const objs = v as Record<string, EvidenceValue>[];
      const columns = [...new Set(objs.flatMap((o) => Object.keys(o)))].sort();
      return { key, grid: { columns, rows: objs.map((o) => ({ cells: columns.map((c) => (c in o ? scalarText(o[c]) : '')) })) } };
    }
    return { key, value: JSON.stringify(v) };
  }
  const entries = Object.keys(v).sort();
  if (entries.length === 0) return { key, value: '(none)' };
  return { key, table: entries.map((k) => ({ key: k, value: isScalar(v[k]) || (Array.isArray(v[k]) && (v[k] as EvidenceValue[]).every(isScalar)) ? (Array.isArray(v[k]) ? (v[k] as EvidenceValue[]).map(scalarText).join(', ') : scalarText(v[k])) : JSON.stringify(v[k]) })) };
}

function waiverView(w: Waiver): WaiverView {
  return { approver: w.approver, ticket: w.ticket, expires: fmtTime(w.expires), justification: w.justification, resource: w.resource, check: w.check };
}

function findingView(f: Finding, checkRemediation: string | undefined, isNew = false): FindingView {
  return {
    id: f.id,
    check: f.check,
    severity: f.severity,
    resource: f.resource,
    message: f.message,
    evidence: Object.keys(f.evidence)
      .sort()
      .map((key) => evidenceRow(key, f.evidence[key])),
    remediation: f.remediation && f.remediation !== checkRemediation ? f.remediation : undefined,
    waived: f.waived ? waiverView(f.waived) : undefined,
    note: f.severity === 'info',
    isNew,
  };
}

const STATUS_ORDER: Record<Status, number> = { fail: 0, error: 1, skipped: 2, pass: 3 };

function bySeverityThenResource(a: Finding, b: Finding): number {
  return SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0);
}

function diffRow(f: Finding) {
  return { id: f.id, check: f.check, severity: f.severity, resource: f.resource, message: f.message, waived: f.waived !== undefined };
}

/** Findings a check shows expanded; longer lists start collapsed so the page stays navigable. */
export const OPEN_FINDINGS_MAX = 20;
/** Rows each "what changed" list shows; the rest are counted (every finding is in report.json). */
export const DIFF_ROWS_MAX = 200;
/** Runs the trend chart shows. */
export const TREND_RUNS = 20;
/** Entries of the "fix these first" box. */
export const FIX_FIRST_MAX = 10;

const SEV_COLOR: Record<Severity, string> = { critical: '#82071e', high: '#cf222e', medium: '#bc4c00', low: '#0969da', info: '#8c959f' };

/** The first sentence: the one line of a remediation the "fix these first" box shows. */
function firstSentence(text: string): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text.trim());
  return m ? m[1] : text.trim();
}

const isOpen = (f: Finding) => !f.waived && f.severity !== 'info';

/**
 * Open critical and high findings, grouped by check and severity so a thousand broken rows are
 * one entry (with the check's one remediation), ranked by severity, then by how many there
 * are, then by check.
 */
function fixFirst(report: Report, link: (check: string) => string | undefined, remediationOf: (check: string) => string | undefined) {
  const groups = new Map<string, { severity: Severity; check: string; title: string; findings: Finding[] }>();
  for (const r of report.results) {
    for (const f of r.findings) {
      if (!isOpen(f) || SEVERITY_RANK[f.severity] < SEVERITY_RANK.high) continue;
      const key = `${f.severity}\0${r.check}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { severity: f.severity, check: r.check, title: r.title, findings: [] }));
      g.findings.push(f);
    }
  }
  const ranked = [...groups.values()].sort(
    (a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.findings.length - a.findings.length || (a.check < b.check ? -1 : a.check > b.check ? 1 : 0),
  );
  const items = ranked.slice(0, FIX_FIRST_MAX).map((g) => {
    const first = [...g.findings].sort(bySeverityThenResource)[0];
    return {
      severity: g.severity,
      check: g.check,
      title: g.title,
      anchor: `check-${cls(g.check)}`,
      count: g.findings.length,
      more: g.findings.length - 1,
      resource: first.resource,
      message: first.message,
      remediation: firstSentence(first.remediation || remediationOf(g.check) || ''),
      runbookHref: link(g.check),
    };
  });
  const total = ranked.reduce((n, g) => n + g.findings.length, 0);
  const shown = items.reduce((n, i) => n + i.count, 0);
  return { items, total, hidden: total - shown, hiddenGroups: ranked.length - items.length };
}

/** Bars of findings by severity (open, waived): geometry for the template's inline SVG. */
function severityChart(bySeverity: { severity: Severity; open: number; waived: number; total: number }[]) {
  const W = 220; // bar area width
  const max = Math.max(1, ...bySeverity.map((b) => b.total));
  return {
    width: 360,
    height: bySeverity.length * 20 + 8,
    bars: bySeverity.map((b, i) => {
      const openW = b.open === 0 ? 0 : Math.max(2, Math.round((b.open / max) * W));
      const waivedW = b.waived === 0 ? 0 : Math.max(2, Math.round((b.waived / max) * W));
      return { severity: b.severity, y: 4 + i * 20, labelY: 18 + i * 20, x: 70, openW, waivedX: 70 + openW, waivedW, countX: 76 + openW + waivedW, open: b.open, waived: b.waived, total: b.total, color: SEV_COLOR[b.severity] };
    }),
  };
}

/** Stacked bars of open findings by severity over the last runs; undefined with fewer than two runs. */
function trendChart(trend: readonly TrendPoint[] | undefined) {
  if (!trend || trend.length < 2) return undefined;
  const points = trend.slice(-TREND_RUNS);
  const H = 80;
  const left = 40;
  const plotW = 300;
  // The bars spread over the plot, so the first and last dates sit under the first and last bar.
  const step = Math.floor(plotW / points.length);
  const barW = Math.max(4, Math.min(24, step - 4));
  const pad = Math.floor((step - barW) / 2);
  const totals = points.map((p) => SEVERITIES.reduce((n, s) => n + (p.open[s] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const bars = points.map((p, i) => {
    let y = 10 + H;
    const segments = (['low', 'medium', 'high', 'critical'] as const)
      .filter((sev) => (p.open[sev] ?? 0) > 0)
      .map((sev) => {
        const h = Math.max(1, Math.round(((p.open[sev] ?? 0) / max) * H));
        y -= h;
        return { severity: sev, y, h, color: SEV_COLOR[sev] };
      });
    return { x: left + i * step + pad, w: barW, segments, total: totals[i], runId: p.runId, finishedAt: fmtTime(p.finishedAt), current: i === points.length - 1 };
  });
  const change = totals[totals.length - 1] - totals[totals.length - 2];
  const day = (iso: string) => fmtTime(iso).slice(0, 10);
  return {
    width: left + plotW + 8,
    height: H + 32,
    max,
    maxY: 14,
    baseY: 10 + H,
    labelY: H + 26,
    firstX: left + pad,
    lastX: left + (points.length - 1) * step + pad + barW,
    bars,
    first: day(points[0].finishedAt),
    last: day(points[points.length - 1].finishedAt),
    runs: points.length,
    latest: totals[totals.length - 1],
    change: change === 0 ? 'unchanged since the previous run' : `${change > 0 ? '+' : '−'}${Math.abs(change)} since the previous run`,
  };
}

/** The view model of the report page (exported for tests: the counts the page shows). */
export function reportView(report: Report, opts: HtmlReportOptions = {}) {
  const metas = opts.metas;
  const link = (check: string) => runbookHref(metas?.get(check)?.runbook, { baseUrl: opts.runbookBaseUrl, reportDir: opts.reportDir });
  const diff: ReportDiff = diffReports(opts.previous, report);
  const newIds = new Set(diff.hasPrevious ? diff.new.map((f) => f.id) : []);
  const list = (fs: Finding[], cap: number) => {
    const rows = [...fs].sort(bySeverityThenResource).map(diffRow);
    return { rows: rows.slice(0, cap), total: rows.length, hidden: Math.max(0, rows.length - cap), expanded: rows.length > 0 && rows.length <= OPEN_FINDINGS_MAX };
  };
  const perCheck = new Map<string, { check: string; new: number; resolved: number; open: number; unverified: number }>();
  for (const [kind, fs] of [['new', diff.new], ['resolved', diff.resolved], ['open', diff.open], ['unverified', diff.unverified]] as const) {
    for (const f of fs) {
      let row = perCheck.get(f.check);
      if (!row) perCheck.set(f.check, (row = { check: f.check, new: 0, resolved: 0, open: 0, unverified: 0 }));
      row[kind]++;
    }
  }
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
      const open = findings.filter(isOpen).length;
      const waived = findings.filter((f) => f.waived).length;
      const notes = findings.filter((f) => !f.waived && f.severity === 'info').length;
      const worst = findings.filter(isOpen).reduce<Severity | undefined>((w, f) => (!w || SEVERITY_RANK[f.severity] > SEVERITY_RANK[w] ? f.severity : w), undefined);
      return {
        anchor: `check-${cls(r.check)}`,
        check: r.check,
        title: r.title,
        status: r.status,
        severity: r.severity,
        /** The most severe open finding, when it is below the check's ceiling (a critical check holding a high finding). */
        worstBelowCeiling: worst && SEVERITY_RANK[worst] < SEVERITY_RANK[r.severity] ? worst : undefined,
        description: meta?.description,
        remediation,
        runbook: meta?.runbook,
        runbookHref: link(r.check),
        durationMs: r.durationMs,
        error: r.error,
        errorCode: r.errorCode,
        // Findings gathered before an error are kept as evidence; the page says so.
        partial: r.status === 'error' && findings.length > 0,
        findings: findings.map((f) => findingView(f, remediation, newIds.has(f.id))),
        // Short lists with something open are expanded (and print); long ones start collapsed.
        expanded: findings.length <= OPEN_FINDINGS_MAX && open > 0,
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
    openMax: OPEN_FINDINGS_MAX,
    bySeverity,
    severityChart: severityChart(bySeverity),
    trendChart: trendChart(opts.trend),
    fixFirst: fixFirst(report, link, (c) => metas?.get(c)?.remediation),
    totals: {
      findings: all.length,
      waived: waivedFindings.length,
      open: all.filter(isOpen).length,
      notes: all.filter((f) => !f.waived && f.severity === 'info').length,
    },
    checks,
    waived: waivedFindings.map((f) => ({ ...diffRow(f), waiver: waiverView(f.waived as Waiver) })),
    expiredWaivers: (report.expiredWaivers ?? []).map(waiverView),
    diff: {
      hasPrevious: diff.hasPrevious,
      previousRunId: diff.previousRunId,
      previousFinishedAt: fmtTime(diff.previousFinishedAt),
      // New findings are also marked NEW where they stand in the results; still-open ones are
      // only counted there. Resolved and not re-checked ones exist nowhere else on the page.
      new: list(diff.new, DIFF_ROWS_MAX),
      resolved: list(diff.resolved, DIFF_ROWS_MAX),
      unverified: list(diff.unverified, DIFF_ROWS_MAX),
      open: { total: diff.open.length },
      byCheck: [...perCheck.values()].sort((a, b) => (a.check < b.check ? -1 : 1)),
    },
  };
}

export function renderHtmlReport(report: Report, opts: HtmlReportOptions = {}): string {
  return template('report', opts.templatesDir)(reportView(report, opts));
}

/** Writes `<dir>/report.html`; returns its path. */
export async function writeHtmlReport(report: Report, dir: string, opts: HtmlReportOptions = {}): Promise<string> {
  return writeOutputFile(dir, HTML_REPORT_FILE, renderHtmlReport(report, { reportDir: dir, ...opts }));
}
