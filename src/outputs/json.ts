/**
 * The canonical JSON report: written with a stable key order (so two runs diff cleanly)
 * and read back with its schema version checked, since every other output and the run
 * history are rendered from it.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { AuditError, ErrorCodes } from '../core/errors';
import { SEVERITIES, STATUSES, type Report } from '../core/types';
import { writeOutputFile } from './fs';

export const REPORT_SCHEMA_VERSION = 1;
export const JSON_REPORT_FILE = 'report.json';

// Known objects keep a fixed, documented order (schemaVersion first); anything else (evidence) is sorted, so the
// bytes depend only on the content, never on the order a check happened to build it in.
const ORDER: Record<string, readonly string[]> = {
  report: ['schemaVersion', 'tool', 'deployment', 'runId', 'configDigest', 'startedAt', 'finishedAt', 'summary', 'results', 'expiredWaivers'],
  tool: ['name', 'version'],
  summary: ['pass', 'fail', 'error', 'skipped'],
  result: ['check', 'title', 'severity', 'status', 'durationMs', 'startedAt', 'error', 'errorCode', 'sourceErrors', 'findings', 'measurements'],
  sourceError: ['source', 'reason'],
  finding: ['id', 'check', 'severity', 'resource', 'messageId', 'message', 'evidence', 'remediation', 'waived'],
  measurement: ['name', 'value', 'help'],
  waiver: ['check', 'resource', 'justification', 'approver', 'ticket', 'expires'],
};

function ordered(obj: Record<string, unknown>, order: readonly string[] | undefined): [string, unknown][] {
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  if (!order) return keys.sort().map((k) => [k, obj[k]]);
  const rank = new Map(order.map((k, i) => [k, i]));
  return keys
    .sort((a, b) => (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity) || (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => [k, obj[k]]);
}

/** Which known object a key's value is, by the key that holds it. */
const CHILD_KIND: Record<string, string> = {
  tool: 'tool',
  summary: 'summary',
  results: 'result',
  sourceErrors: 'sourceError',
  findings: 'finding',
  measurements: 'measurement',
  waived: 'waiver',
  expiredWaivers: 'waiver',
};

function normalise(value: unknown, kind: string | undefined): unknown {
  if (Array.isArray(value)) return value.map((v) => normalise(v, kind));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of ordered(value as Record<string, unknown>, kind ? ORDER[kind] : undefined)) {
      // Known kinds apply to the report's own structure; below them (evidence) every level is sorted.
      out[k] = normalise(v, kind && ORDER[kind] ? CHILD_KIND[k] : undefined);
    }
    return out;
  }
  return value;
}

/** The report as canonical JSON text: stable key order, 2-space indent, trailing newline. */
export function formatJsonReport(report: Report): string {
  return JSON.stringify(normalise(report, 'report'), null, 2) + '\n';
}

/** Writes `<dir>/report.json` (atomically: a reader never sees half a report); returns its path. */
export async function writeJsonReport(report: Report, dir: string): Promise<string> {
  return writeOutputFile(dir, JSON_REPORT_FILE, formatJsonReport(report));
}

const evidenceValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(evidenceValue), z.record(z.string(), evidenceValue)]),
);
const waiverSchema = z.object({
  check: z.string(),
  resource: z.string(),
  justification: z.string(),
  approver: z.string(),
  ticket: z.string(),
  expires: z.string(),
});
const findingSchema = z.object({
  id: z.string(),
  check: z.string(),
  severity: z.enum(SEVERITIES),
  resource: z.string(),
  messageId: z.string(),
  message: z.string(),
  evidence: z.record(z.string(), evidenceValue),
  remediation: z.string(),
  waived: waiverSchema.optional(),
});
const resultSchema = z.object({
  check: z.string(),
  title: z.string(),
  severity: z.enum(SEVERITIES),
  status: z.enum(STATUSES),
  durationMs: z.number(),
  error: z.string().nullable(),
  errorCode: z.string().optional(),
  sourceErrors: z.array(z.object({ source: z.string(), reason: z.string() })).optional(),
  findings: z.array(findingSchema),
  measurements: z.array(z.object({ name: z.string(), value: z.number(), help: z.string() })).optional(),
  startedAt: z.string(),
});
const count = z.number().int().min(0);
// Unknown keys are kept (loose): a newer minor addition must not make an old report unreadable.
export const reportSchema = z.looseObject({
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  tool: z.object({ name: z.literal('aegis-audit'), version: z.string() }),
  deployment: z.string(),
  runId: z.string(),
  configDigest: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  summary: z.object({ pass: count, fail: count, error: count, skipped: count }),
  results: z.array(resultSchema),
  expiredWaivers: z.array(waiverSchema).optional(),
});

/** Validates a parsed JSON value as a report; `where` names it in errors. */
export function parseReport(value: unknown, where: string): Report {
  if (value && typeof value === 'object' && 'schemaVersion' in value) {
    const v = (value as { schemaVersion: unknown }).schemaVersion;
    if (v !== REPORT_SCHEMA_VERSION) {
      throw new AuditError(
        ErrorCodes.BAD_DATA,
        `${where}: report schemaVersion ${JSON.stringify(v)} is not supported (this aegis-audit reads schemaVersion ${REPORT_SCHEMA_VERSION})`,
      );
    }
  }
  const parsed = reportSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new AuditError(ErrorCodes.BAD_DATA, `${where}: not an aegis-audit report: ${first.join('; ')}`);
  }
  return parsed.data as Report;
}

/** Reads and validates a `report.json`. */
export async function readJsonReport(file: string): Promise<Report> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new AuditError(ErrorCodes.USAGE, `${file}: cannot read the report (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AuditError(ErrorCodes.BAD_DATA, `${file}: not JSON (${(e as Error).message})`);
  }
  return parseReport(value, file);
}
