/**
 * The pre-pilot checklist: each item of CHECKLIST (core/checklist.ts) judged from the
 * report's check results and the attestations file.
 *
 * Rules:
 * - any evidencing check fails → FAIL (an attestation never outweighs a failing check);
 * - a check that is error, skipped or absent from the run → NOT EVALUATED, unless an
 *   unexpired attestation for the item covers it → ATTESTED;
 * - an item that names an attestation requirement also needs an unexpired attestation:
 *   all checks pass + attestation → PASS; no (or an expired) attestation → NOT EVALUATED;
 * - except where checks evidence the attestation itself (`attestationEvidencedBy`): when they
 *   ran, the item is judged by its checks alone (no attestation needed, and one recorded is
 *   not what makes it pass); when one of them was skipped or not part of the run, the
 *   attestation stands in for it — all other checks pass + attestation → PASS, no
 *   attestation → NOT EVALUATED;
 *   an item with no checks at all → ATTESTED or NOT EVALUATED;
 * - otherwise (all checks pass) → PASS.
 */
import { CHECKLIST, type ChecklistItem } from '../core/checklist';
import type { Finding, Report, Severity, Status } from '../core/types';
import { SEVERITY_RANK } from '../core/types';
import { attestationExpired, type Attestation } from './attestations';
import { writeOutputFile } from './fs';
import type { CheckMetas } from './metas';
import { cls, fmtTime, runbookHref, safeHref, template } from './render';

export const CHECKLIST_FILE = 'checklist.html';

export const ITEM_STATUSES = ['PASS', 'FAIL', 'NOT EVALUATED', 'ATTESTED'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

export interface ItemCheck {
  check: string;
  title: string;
  /** `absent`: the check was not part of this run (disabled, not selected, or not yet implemented). */
  status: Status | 'absent';
  reason: string | null;
  findings: Finding[];
}

export interface ItemResult {
  item: ChecklistItem;
  status: ItemStatus;
  /** Why the item has its status, in words a reviewer can act on. */
  reasons: string[];
  checks: ItemCheck[];
  /** The attestation considered: the unexpired one that expires last, else the latest expired one. */
  attestation?: Attestation & { expired: boolean };
}

export interface ChecklistResult {
  deployment: string;
  runId: string;
  evaluatedAt: string;
  items: ItemResult[];
  counts: Record<ItemStatus, number>;
}

function pickAttestation(list: readonly Attestation[], now: Date): (Attestation & { expired: boolean }) | undefined {
  const byExpiry = [...list].sort((a, b) => Date.parse(b.expires) - Date.parse(a.expires));
  const valid = byExpiry.find((a) => !attestationExpired(a, now));
  if (valid) return { ...valid, expired: false };
  return byExpiry[0] ? { ...byExpiry[0], expired: true } : undefined;
}

export function evaluateChecklist(
  report: Report,
  opts: { attestations?: readonly Attestation[]; now?: Date; items?: readonly ChecklistItem[] } = {},
): ChecklistResult {
  const now = opts.now ?? new Date();
  const results = new Map(report.results.map((r) => [r.check, r]));
  const attestationsByItem = new Map<string, Attestation[]>();
  for (const a of opts.attestations ?? []) attestationsByItem.set(a.item, [...(attestationsByItem.get(a.item) ?? []), a]);

  const items = (opts.items ?? CHECKLIST).map((item): ItemResult => {
    const checks: ItemCheck[] = item.checks.map((id) => {
      const r = results.get(id);
      if (!r) return { check: id, title: id, status: 'absent', reason: 'not part of this run (disabled, not selected, or not yet implemented)', findings: [] };
      return { check: id, title: r.title, status: r.status, reason: r.error, findings: r.findings };
    });
    const attestation = pickAttestation(attestationsByItem.get(item.id) ?? [], now);
    const attested = attestation !== undefined && !attestation.expired;
    const reasons: string[] = [];
    const failing = checks.filter((c) => c.status === 'fail');
    // Checks that evidence the attestation and did not run: the attestation stands in for them.
    const evidencing = new Set(item.attestationEvidencedBy ?? []);
    const standIn = checks.filter((c) => evidencing.has(c.check) && (c.status === 'skipped' || c.status === 'absent'));
    const unevaluated = checks.filter((c) => c.status !== 'pass' && c.status !== 'fail' && !standIn.includes(c));
    const needsAttestation = item.attestation !== undefined && (evidencing.size === 0 || standIn.length > 0);
    const attestationNote = attestation?.expired
      ? `the attestation by ${attestation.by} expired on ${fmtTime(attestation.expires)}`
      : 'no attestation is recorded';

    let status: ItemStatus;
    if (failing.length > 0) {
      status = 'FAIL';
      for (const c of failing) reasons.push(`${c.check} fails`);
    } else if (unevaluated.length > 0) {
      for (const c of unevaluated) reasons.push(`${c.check} is ${c.status === 'absent' ? 'not part of this run' : c.status === 'error' ? 'not evaluated (error)' : 'skipped'}`);
      if (attested) {
        status = 'ATTESTED';
        reasons.push(`covered by the attestation of ${attestation.by}`);
      } else {
        status = 'NOT EVALUATED';
        reasons.push(attestationNote);
      }
    } else if (checks.length === 0 || needsAttestation) {
      const because = standIn.length > 0 ? ` (${standIn.map((c) => `${c.check} ${c.status === 'absent' ? 'was not part of this run' : 'was skipped'}`).join(', ')}, so it cannot evidence this)` : '';
      if (attested) {
        status = checks.length === standIn.length ? 'ATTESTED' : 'PASS';
        if (standIn.length > 0) reasons.push(`the attestation of ${attestation.by} stands in for ${standIn.map((c) => c.check).join(', ')}${because}`);
      } else {
        status = 'NOT EVALUATED';
        reasons.push(`needs an attestation: ${item.attestation ?? 'manual review'}${because}; ${attestationNote}`);
      }
    } else {
      status = 'PASS';
      if (item.attestation) reasons.push(`no attestation needed: ${[...evidencing].join(', ')} evidenced "${item.attestation}"`);
    }
    return { item, status, reasons, checks, attestation };
  });

  const counts = Object.fromEntries(ITEM_STATUSES.map((s) => [s, 0])) as Record<ItemStatus, number>;
  for (const i of items) counts[i.status]++;
  return { deployment: report.deployment, runId: report.runId, evaluatedAt: now.toISOString(), items, counts };
}

export interface ChecklistRenderOptions {
  attestations?: readonly Attestation[];
  now?: Date;
  metas?: CheckMetas;
  runbookBaseUrl?: string;
  /** The folder the page is written to: without a base URL, runbooks are linked relative to it. */
  reportDir?: string;
  templatesDir?: string;
}

function bySeverity(a: Finding, b: Finding): number {
  return SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || (a.resource < b.resource ? -1 : 1);
}

/** The view model of the checklist page (exported for tests). */
export function checklistView(report: Report, opts: ChecklistRenderOptions = {}) {
  const result = evaluateChecklist(report, opts);
  const overall = result.counts.FAIL > 0 ? 'FAIL' : result.counts['NOT EVALUATED'] > 0 ? 'NOT READY' : 'READY';
  return {
    deployment: report.deployment,
    runId: report.runId,
    configDigest: report.configDigest,
    tool: report.tool,
    finishedAt: fmtTime(report.finishedAt),
    evaluatedAt: fmtTime(result.evaluatedAt),
    overall,
    overallCls: overall === 'READY' ? 'pass' : overall === 'FAIL' ? 'fail' : 'not-evaluated',
    counts: ITEM_STATUSES.map((s) => ({ status: s, cls: cls(s), count: result.counts[s] })),
    items: result.items.map((r, i) => ({
      n: i + 1,
      id: r.item.id,
      title: r.item.title,
      source: r.item.source,
      requirement: r.item.attestation,
      requirementUnless: r.item.attestationEvidencedBy?.join(', '),
      status: r.status,
      cls: cls(r.status),
      reasons: r.reasons,
      checks: r.checks.map((c) => {
        const meta = opts.metas?.get(c.check);
        const shown = [...c.findings].sort(bySeverity);
        return {
          check: c.check,
          title: c.title,
          status: c.status,
          reason: c.reason,
          runbook: meta?.runbook,
          runbookHref: runbookHref(meta?.runbook, { baseUrl: opts.runbookBaseUrl, reportDir: opts.reportDir }),
          findings: shown.map((f) => ({
            id: f.id,
            severity: f.severity as Severity,
            resource: f.resource,
            message: f.message,
            note: f.severity === 'info',
            waived: f.waived ? { approver: f.waived.approver, ticket: f.waived.ticket, expires: fmtTime(f.waived.expires) } : undefined,
          })),
        };
      }),
      attestation: r.attestation
        ? {
            by: r.attestation.by,
            at: fmtTime(r.attestation.at),
            expires: fmtTime(r.attestation.expires),
            expired: r.attestation.expired,
            evidence: r.attestation.evidence,
            evidenceHref: safeHref(r.attestation.evidence),
          }
        : undefined,
    })),
  };
}

export function renderChecklist(report: Report, opts: ChecklistRenderOptions = {}): string {
  return template('checklist', opts.templatesDir)(checklistView(report, opts));
}

/** Writes `<dir>/checklist.html`; returns its path. */
export async function writeChecklist(report: Report, dir: string, opts: ChecklistRenderOptions = {}): Promise<string> {
  return writeOutputFile(dir, CHECKLIST_FILE, renderChecklist(report, { reportDir: dir, ...opts }));
}
