/**
 * Every output of a run, rendered from the one canonical report:
 * `report.json`, `report.html`, `checklist.html`, `report.junit.xml`, `report.sarif`.
 */
import type { OutputFormat } from '../config/schema';
import { serialised } from '../core/atomic-write';
import { scrubReport } from '../core/report';
import { processSecrets } from '../core/secret';
import type { Report } from '../core/types';
import type { Attestation } from './attestations';
import { writeChecklist } from './checklist';
import { writeHtmlReport, type TrendPoint } from './html';
import { writeJsonReport } from './json';
import { writeJunit } from './junit';
import type { CheckMetas } from './metas';
import { writeSarif } from './sarif';

export const OUTPUT_FORMATS = ['json', 'html', 'checklist', 'junit', 'sarif'] as const satisfies readonly OutputFormat[];

export interface WriteOutputsOptions {
  dir: string;
  /** Which files to write (default: all five). */
  formats?: readonly OutputFormat[];
  /** The previous run of the deployment (HistoryStore.previous), for "what changed". */
  previous?: Report;
  /** Registry metadata by check id: descriptions, runbooks, remediation. */
  metas?: CheckMetas;
  /** Manual checklist evidence (loadAttestations). */
  attestations?: readonly Attestation[];
  /** The clock attestations expire against (default now). */
  now?: Date;
  /** Base URL that turns runbook paths into links in HTML and SARIF (else HTML links them relative to `dir`). */
  runbookBaseUrl?: string;
  /** Open findings by severity of the last runs, this one last, for the report's trend chart. */
  trend?: readonly TrendPoint[];
}

/**
 * Writes the selected outputs; returns the paths written, in format order. Runs writing the
 * same folder take turns, so its files always come from one run.
 */
export function writeOutputs(report: Report, opts: WriteOutputsOptions): Promise<{ files: string[] }> {
  return serialised(opts.dir, () => writeAll(report, opts));
}

async function writeAll(unscrubbed: Report, opts: WriteOutputsOptions): Promise<{ files: string[] }> {
  // Every secret this process has read, however late, is scrubbed from every file.
  const report = scrubReport(unscrubbed, processSecrets);
  const formats = new Set(opts.formats ?? OUTPUT_FORMATS);
  const { dir, metas, runbookBaseUrl } = opts;
  // Each file is rendered (on this thread) and then written at once with the others: their
  // fsyncs overlap (five atomic writes: about 20 ms in turn, 8 ms together, on this project's
  // machine). Each stays atomic; the folder's files still come from one run (serialised).
  const writes: Promise<string>[] = [];
  if (formats.has('json')) writes.push(writeJsonReport(report, dir));
  if (formats.has('html')) writes.push(writeHtmlReport(report, dir, { metas, previous: opts.previous, runbookBaseUrl, trend: opts.trend }));
  if (formats.has('checklist')) writes.push(writeChecklist(report, dir, { metas, attestations: opts.attestations, now: opts.now, runbookBaseUrl }));
  if (formats.has('junit')) writes.push(writeJunit(report, dir));
  if (formats.has('sarif')) writes.push(writeSarif(report, dir, { metas, runbookBaseUrl }));
  // Every write settles before the folder is another run's turn; the first failure is the error.
  const settled = await Promise.allSettled(writes);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return { files: settled.map((r) => (r as PromiseFulfilledResult<string>).value) };
}

export { diffReports, type ReportDiff } from './diff';
export { readJsonReport, formatJsonReport, parseReport, writeJsonReport } from './json';
export { renderHtmlReport, writeHtmlReport, TREND_RUNS, type TrendPoint } from './html';
export { evaluateChecklist, renderChecklist, writeChecklist, type ItemStatus, type ChecklistResult } from './checklist';
export { formatJunit, writeJunit } from './junit';
export { buildSarif, formatSarif, writeSarif } from './sarif';
export { loadAttestations, parseAttestations, type Attestation } from './attestations';
export { checkWaivers, lintWaivers, loadWaivers, waiversLintExitCode } from './waivers-file';
export { countsOf, createHistoryStore, DirectoryHistoryStore, PostgresHistoryStore, type HistoryStore, type RunCounts } from './history';
export { metasFromChecks, type CheckMetaInfo, type CheckMetas } from './metas';
