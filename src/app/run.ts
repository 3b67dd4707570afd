/**
 * `run` as a whole: waivers and attestations in, the audit, the previous run from history,
 * every output file, the new run into history. `run`, `demo`, `checklist` and the daemon's
 * report writer all go through here so their files always agree.
 */
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load';
import type { OutputFormat } from '../config/schema';
import type { Registry } from '../core/registry';
import type { Logger } from '../core/logger';
import type { KnownSecrets } from '../core/secret';
import type { Report } from '../core/types';
import { runAudit, type AuditOptions } from './audit';
import { countsOf, createHistoryStore, loadAttestations, loadWaivers, metasFromChecks, TREND_RUNS, writeOutputs } from '../outputs';

/** `--out -`: the report goes to stdout only; no file is written and no history kept. */
export const STDOUT_OUT = '-';

export interface AuditAndWriteOptions {
  only?: readonly string[];
  /** Output directory (default: the config's `outputs.dir`, relative to the working directory); `-`: write nothing. */
  out?: string;
  formats?: readonly OutputFormat[];
  logger?: Logger;
  knownSecrets?: KnownSecrets;
  now?: () => Date;
  /** `run --full`: re-verify from the start instead of from checkpoints. */
  full?: boolean;
  /** Told as long checks advance (see src/app/progress.ts). */
  onProgress?: AuditOptions['onProgress'];
  /** Where history is kept (`<dir>/history/<deployment>/`; default: the output directory). A fleet keeps it in its outputs root. */
  historyDir?: string;
  /** Waivers and attestations already loaded (a fleet loads every deployment's before any check runs). */
  inputs?: RunInputs;
  /** A slot shared beyond this run that each check waits for (a fleet's bound on checks at once). */
  limit?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export type RunInputs = Awaited<ReturnType<typeof loadRunInputs>>;

export interface AuditAndWriteResult {
  report: Report;
  files: string[];
  outDir: string;
}

export async function loadRunInputs(loaded: LoadedConfig, registry: Registry, now: Date) {
  const { config } = loaded;
  const waivers = config.waivers
    ? await loadWaivers(config.waivers, { knownChecks: registry.keys(), maxLifetimeMs: config.waiver_max_lifetime, now })
    : { active: [], expired: [] };
  const attestations = config.attestations ? await loadAttestations(config.attestations) : [];
  return { waivers, attestations };
}

export async function auditAndWrite(loaded: LoadedConfig, registry: Registry, opts: AuditAndWriteOptions = {}): Promise<AuditAndWriteResult> {
  const { config } = loaded;
  const now = opts.now ?? (() => new Date());
  const outDir = opts.out === STDOUT_OUT ? STDOUT_OUT : resolve(opts.out ?? config.outputs.dir);
  // Bad waivers or attestations stop the run before any check: exit 2, not a half-waived report.
  const { waivers, attestations } = opts.inputs ?? (await loadRunInputs(loaded, registry, now()));
  const report = await runAudit(loaded, registry, {
    only: opts.only,
    logger: opts.logger,
    knownSecrets: opts.knownSecrets,
    now: opts.now,
    full: opts.full,
    onProgress: opts.onProgress,
    waivers: waivers.active,
    expiredWaivers: waivers.expired,
    limit: opts.limit,
  });
  if (opts.out === STDOUT_OUT) return { report, files: [], outDir: STDOUT_OUT };
  const history = createHistoryStore(config, { outputsDir: opts.historyDir ?? outDir });
  try {
    const previous = await history.previous(config.deployment);
    const trend = [...(await history.recent(config.deployment, TREND_RUNS - 1)), countsOf(report)];
    const { files } = await writeOutputs(report, {
      dir: outDir,
      formats: opts.formats ?? config.outputs.formats,
      previous,
      trend,
      metas: metasFromChecks(registry.values()),
      attestations,
      now: now(),
      runbookBaseUrl: config.outputs.runbook_base_url,
    });
    await history.save(report);
    return { report, files, outDir };
  } finally {
    await history.close();
  }
}
