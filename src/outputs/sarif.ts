/**
 * SARIF 2.1.0 for code-scanning UIs: one run, a rule per check, a result per finding.
 * Results carry the stable finding id as a partial fingerprint (so a viewer tracks the same
 * finding across runs), the resource as a logical location, and a suppression when waived.
 */
import type { Finding, Report, Severity } from '../core/types';
import { writeOutputFile } from './fs';
import type { CheckMetas } from './metas';
import { safeHref } from './render';

export const SARIF_FILE = 'report.sarif';
export const SARIF_SCHEMA_URI = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
/** The partialFingerprints key of the stable finding id. */
export const FINGERPRINT_KEY = 'aegisFindingId/v1';

export type SarifLevel = 'error' | 'warning' | 'note';

export function sarifLevel(s: Severity): SarifLevel {
  return s === 'critical' || s === 'high' ? 'error' : s === 'medium' ? 'warning' : 'note';
}

/** GitHub's `security-severity` scale: critical ≥ 9.0, high 7.0–8.9, medium 4.0–6.9, low 0.1–3.9. */
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0', info: '0.0' };

export interface SarifOptions {
  metas?: CheckMetas;
  runbookBaseUrl?: string;
}

function result(f: Finding, ruleIndex: number, deployment: string) {
  return {
    ruleId: f.check,
    ruleIndex,
    level: sarifLevel(f.severity),
    message: { text: f.message },
    partialFingerprints: { [FINGERPRINT_KEY]: f.id },
    locations: [
      {
        logicalLocations: [{ name: f.resource, fullyQualifiedName: `${deployment}/${f.resource}`, kind: 'resource' }],
      },
    ],
    ...(f.waived
      ? {
          suppressions: [
            {
              kind: 'external',
              status: 'accepted',
              justification: f.waived.justification,
              properties: { approver: f.waived.approver, ticket: f.waived.ticket, expires: f.waived.expires, pattern: f.waived.resource },
            },
          ],
        }
      : {}),
    properties: { findingId: f.id, severity: f.severity, messageId: f.messageId, evidence: f.evidence, remediation: f.remediation },
  };
}

export function buildSarif(report: Report, opts: SarifOptions = {}) {
  const rules = report.results.map((r) => {
    const meta = opts.metas?.get(r.check);
    const helpUri = safeHref(meta?.runbook, opts.runbookBaseUrl);
    const helpText = [meta?.remediation ? `Remediation: ${meta.remediation}` : undefined, meta?.runbook ? `Runbook: ${meta.runbook}` : undefined]
      .filter((x): x is string => x !== undefined)
      .join('\n');
    return {
      id: r.check,
      name: r.check,
      shortDescription: { text: r.title },
      fullDescription: { text: meta?.description ?? r.title },
      ...(helpUri ? { helpUri } : {}),
      ...(helpText ? { help: { text: helpText } } : {}),
      defaultConfiguration: { level: sarifLevel(r.severity) },
      properties: { 'security-severity': SECURITY_SEVERITY[r.severity], severity: r.severity, tags: ['security', 'compliance'] },
    };
  });
  const results = report.results.flatMap((r, i) => r.findings.map((f) => result(f, i, report.deployment)));
  // Checks that could not be evaluated are tool notifications, not results: no finding to point at.
  const notifications = report.results
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.status === 'error' || r.status === 'skipped')
    .map(({ r, i }) => ({
      level: r.status === 'error' ? ('error' as const) : ('note' as const),
      message: { text: `${r.check} ${r.status === 'error' ? 'could not be evaluated' : 'was skipped'}: ${r.error ?? ''}` },
      associatedRule: { id: r.check, index: i },
    }));
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0' as const,
    runs: [
      {
        tool: { driver: { name: report.tool.name, version: report.tool.version, semanticVersion: report.tool.version, rules } },
        automationDetails: { id: `aegis-audit/${report.deployment}/${report.runId}` },
        invocations: [
          {
            executionSuccessful: report.summary.error === 0,
            startTimeUtc: report.startedAt,
            endTimeUtc: report.finishedAt,
            toolExecutionNotifications: notifications,
          },
        ],
        results,
        properties: { deployment: report.deployment, runId: report.runId, configDigest: report.configDigest, summary: report.summary },
      },
    ],
  };
}

export function formatSarif(report: Report, opts: SarifOptions = {}): string {
  return JSON.stringify(buildSarif(report, opts), null, 2) + '\n';
}

export async function writeSarif(report: Report, dir: string, opts: SarifOptions = {}): Promise<string> {
  return writeOutputFile(dir, SARIF_FILE, formatSarif(report, opts));
}
