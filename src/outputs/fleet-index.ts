/**
 * The fleet's index page: one row per deployment with its overall state, failing and
 * erroring checks, when it last ran and a link to its report. `run` writes it to
 * `<outputs>/index.html` (with `index.json`) beside the deployments' folders; the daemon serves
 * it at `/` and `/report`. Deployment names are config text, shown through `{{ }}` (escaped).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '../core/types';
import { TOOL_VERSION } from '../core/report';
import { writeOutputFile } from './fs';
import { fmtTime, template } from './render';

export const FLEET_INDEX_HTML = 'index.html';
export const FLEET_INDEX_JSON = 'index.json';

/** fail: a check failed; error: none failed, one could not be evaluated; pass: neither; not run: no report yet. */
export const FLEET_STATES = ['fail', 'error', 'pass', 'not run'] as const;
export type FleetState = (typeof FLEET_STATES)[number];

export interface FleetIndexEntry {
  deployment: string;
  state: FleetState;
  /** Checks whose latest result is `fail`. */
  failing: number;
  /** Checks whose latest result is `error` (could not be evaluated). */
  errors: number;
  checks: number;
  /** When the deployment's latest run finished (ISO), if it ran. */
  lastRun?: string;
  /** Its report, relative to the index (or an absolute path on the daemon). */
  link?: string;
}

export function fleetState(report: Pick<Report, 'results'> | undefined): FleetState {
  if (!report) return 'not run';
  if (report.results.some((r) => r.status === 'fail')) return 'fail';
  if (report.results.some((r) => r.status === 'error')) return 'error';
  return 'pass';
}

export function indexEntry(deployment: string, report: Report | undefined, link?: string): FleetIndexEntry {
  return {
    deployment,
    state: fleetState(report),
    failing: report?.results.filter((r) => r.status === 'fail').length ?? 0,
    errors: report?.results.filter((r) => r.status === 'error').length ?? 0,
    checks: report?.results.length ?? 0,
    lastRun: report?.finishedAt,
    link,
  };
}

/** The report file a reader wants most of those `formats` writes: the HTML report, else the checklist, else the JSON. */
export function reportFileFor(formats: readonly string[]): string | undefined {
  if (formats.includes('html')) return 'report.html';
  if (formats.includes('checklist')) return 'checklist.html';
  if (formats.includes('json')) return 'report.json';
  return undefined;
}

/** The report file of a deployment's folder a reader wants most: the HTML report, else the checklist, else the JSON. */
export function reportFileIn(dir: string): string | undefined {
  for (const f of ['report.html', 'checklist.html', 'report.json']) if (existsSync(join(dir, f))) return f;
  return undefined;
}

const RANK: Record<FleetState, number> = { fail: 0, error: 1, 'not run': 2, pass: 3 };
const LABEL: Record<FleetState, string> = { fail: 'FAIL', error: 'NOT EVALUATED', pass: 'PASS', 'not run': 'NOT RUN YET' };

/** Worst first (fail, error, not run, pass), then in config order. */
export function sortIndex(entries: readonly FleetIndexEntry[]): FleetIndexEntry[] {
  return entries.map((e, i) => ({ e, i })).sort((a, b) => RANK[a.e.state] - RANK[b.e.state] || a.i - b.i).map(({ e }) => e);
}

export function renderFleetIndex(entries: readonly FleetIndexEntry[], opts: { generatedAt: Date; title?: string }): string {
  const sorted = sortIndex(entries);
  const count = (s: FleetState) => entries.filter((e) => e.state === s).length;
  const worst = sorted[0]?.state ?? 'not run';
  return template('fleet-index')({
    tool: { name: 'aegis-audit', version: TOOL_VERSION },
    title: opts.title ?? 'Compliance of the fleet',
    generatedAt: fmtTime(opts.generatedAt.toISOString()),
    overall: entries.length === 0 ? 'NO DEPLOYMENTS' : LABEL[worst],
    overallCls: worst === 'fail' ? 'fail' : worst === 'pass' ? 'pass' : 'not-evaluated',
    total: entries.length,
    counts: FLEET_STATES.map((s) => ({ state: LABEL[s], cls: s.replace(' ', '-'), count: count(s) })),
    rows: sorted.map((e) => ({
      ...e,
      label: LABEL[e.state],
      cls: e.state === 'not run' ? 'skipped' : e.state,
      lastRun: e.lastRun ? fmtTime(e.lastRun) : '—',
    })),
  });
}

/** Writes `index.html` and `index.json` into `dir`; returns their paths. */
export async function writeFleetIndex(dir: string, entries: readonly FleetIndexEntry[], opts: { generatedAt: Date }): Promise<string[]> {
  const sorted = sortIndex(entries);
  const json = { schemaVersion: 1, tool: { name: 'aegis-audit', version: TOOL_VERSION }, generatedAt: opts.generatedAt.toISOString(), deployments: sorted };
  return [
    await writeOutputFile(dir, FLEET_INDEX_HTML, renderFleetIndex(entries, opts)),
    await writeOutputFile(dir, FLEET_INDEX_JSON, `${JSON.stringify(json, null, 2)}\n`),
  ];
}
