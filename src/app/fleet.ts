/**
 * `run` and `checklist` over a fleet: every selected deployment is audited (at most
 * `fleet.concurrency` checks at once across them, a fair share each), its reports written to
 * `<outputs>/<deployment>/` and its history kept under `<outputs>/history/<deployment>/`, and
 * the index page `<outputs>/index.html` lists every deployment of the fleet — those not
 * selected this time with the report they last had. A deployment whose run fails outright
 * (its history store down, say) is reported as not evaluated; the others go on.
 *
 * Today's format (a fleet of one) runs exactly as before: reports in `<outputs>/`, no index.
 */
import { join, resolve } from 'node:path';
import { deploymentOutDir, linkFrom, selectDeployments, type LoadedFleet } from '../config/fleet';
import type { LoadedConfig } from '../config/load';
import { FairLimiter } from '../core/limiter';
import { describeError } from '../core/redact';
import { EXIT, exitCodeFor } from '../core/report';
import type { Report, Severity } from '../core/types';
import { AuditError, ErrorCodes } from '../core/errors';
import { readJsonReport } from '../outputs';
import { indexEntry, reportFileIn, writeFleetIndex, type FleetIndexEntry } from '../outputs/fleet-index';
import { planChecks } from './audit';
import { auditAndWrite, loadRunInputs, STDOUT_OUT, type AuditAndWriteOptions, type RunInputs } from './run';

export interface FleetRunOptions extends Omit<AuditAndWriteOptions, 'historyDir' | 'inputs' | 'limit'> {
  /** `--deployment`: only these (default: every deployment). */
  deployments?: readonly string[];
}

export interface DeploymentRun {
  loaded: LoadedConfig;
  /** Absent when the run failed outright (see `error`). */
  report?: Report;
  files: string[];
  outDir: string;
  error?: string;
}

export interface FleetRunResult {
  runs: DeploymentRun[];
  /** The index files written (a fleet config, not to stdout). */
  index: string[];
  /** Where the fleet's outputs are. */
  outRoot: string;
}

/** The fleet's exit code: the worst of its deployments' (1 findings before 3 not evaluated before 0). */
export function fleetExitCode(runs: readonly DeploymentRun[], failOn: Severity | undefined): number {
  const codes = runs.map((r) => (r.report ? exitCodeFor(r.report, failOn ?? r.loaded.config.run.fail_on) : EXIT.NOT_EVALUATED));
  if (codes.includes(EXIT.FINDINGS)) return EXIT.FINDINGS;
  if (codes.includes(EXIT.NOT_EVALUATED)) return EXIT.NOT_EVALUATED;
  return EXIT.OK;
}

export async function auditFleetAndWrite(fleet: LoadedFleet, opts: FleetRunOptions = {}): Promise<FleetRunResult> {
  const selected = selectDeployments(fleet, opts.deployments);
  const toStdout = opts.out === STDOUT_OUT;
  if (toStdout && selected.length > 1) {
    throw new AuditError(ErrorCodes.USAGE, `--out ${STDOUT_OUT} / --json writes one deployment's JSON report; the fleet has ${selected.length} (select one with --deployment <name>)`);
  }
  // Usage errors (an unknown --checks id) before any check of any deployment runs.
  if (selected.length > 0) planChecks(selected[0], fleet.registry, opts.only);
  const now = opts.now ?? (() => new Date());
  // Bad waivers or attestations of any deployment stop the run before any check (exit 2).
  const inputs = new Map<LoadedConfig, RunInputs>();
  for (const loaded of selected) {
    try {
      inputs.set(loaded, await loadRunInputs(loaded, fleet.registry, now()));
    } catch (e) {
      if (e instanceof AuditError && !fleet.single) throw new AuditError(e.code, `deployment ${loaded.config.deployment}: ${e.message}`);
      throw e;
    }
  }
  const outRoot = toStdout ? STDOUT_OUT : resolve(opts.out ?? fleet.settings.outputsDir);
  const limiter = new FairLimiter(fleet.settings.concurrency, fleet.settings.maxPerDeployment);
  const runOne = async (loaded: LoadedConfig): Promise<DeploymentRun> => {
    const name = loaded.config.deployment;
    const outDir = toStdout ? STDOUT_OUT : deploymentOutDir(fleet, loaded.config, opts.out);
    const historyDir = toStdout || fleet.single ? undefined : opts.out ? outRoot : resolve(loaded.config.outputs.dir);
    try {
      const r = await auditAndWrite(loaded, fleet.registry, { ...opts, out: outDir, historyDir, inputs: inputs.get(loaded), limit: (fn) => limiter.run(name, fn) });
      return { loaded, report: r.report, files: r.files, outDir: r.outDir };
    } catch (e) {
      // One deployment's failure (its history store down) is its own; a fleet of one fails as before.
      if (fleet.single) throw e;
      opts.logger?.error({ deployment: name, err: describeError(e) }, 'Deployment run failed');
      return { loaded, files: [], outDir, error: describeError(e) };
    }
  };
  // At most `concurrency` deployments in flight: their checks share the limiter's slots.
  const runs: DeploymentRun[] = new Array(selected.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(selected.length, fleet.settings.concurrency) }, async () => {
      while (next < selected.length) {
        const i = next++;
        runs[i] = await runOne(selected[i]);
      }
    }),
  );
  if (fleet.single || toStdout) return { runs, index: [], outRoot };

  const entries: FleetIndexEntry[] = [];
  for (const loaded of fleet.deployments) {
    const name = loaded.config.deployment;
    const dir = deploymentOutDir(fleet, loaded.config, opts.out);
    const run = runs.find((r) => r.loaded === loaded);
    let report = run?.report;
    // Not selected this time: the report it last had, when there is one.
    if (!run) report = await readJsonReport(join(dir, 'report.json')).catch(() => undefined);
    const file = reportFileIn(dir);
    entries.push(indexEntry(name, report, file ? linkFrom(outRoot, join(dir, file)) : undefined));
  }
  const index = await writeFleetIndex(outRoot, entries, { generatedAt: now() });
  return { runs, index, outRoot };
}

/** The fleet's closing lines for the summary: counts by state and where the index is. */
export function formatFleetSummary(result: FleetRunResult): string {
  const failed = result.runs.filter((r) => r.report?.results.some((x) => x.status === 'fail')).length;
  const errored = result.runs.filter((r) => !r.report || (!r.report.results.some((x) => x.status === 'fail') && r.report.results.some((x) => x.status === 'error'))).length;
  const lines = [`fleet: ${result.runs.length} deployment${result.runs.length === 1 ? '' : 's'} audited: ${failed} failing, ${errored} not evaluated, ${result.runs.length - failed - errored} passing`];
  for (const r of result.runs) if (r.error) lines.push(`  ${r.loaded.config.deployment}: run failed: ${r.error}`);
  return lines.join('\n') + '\n';
}
