/**
 * One audit run, end to end: config → sources → checks → findings → report. The CLI's
 * `run`, `demo` and `checklist` commands and the daemon all go through here.
 */
import type { LoadedConfig } from '../config/load';
import type { Registry } from '../core/registry';
import type { Logger } from '../core/logger';
import { silentLogger } from '../core/logger';
import { buildReport, scrubReport } from '../core/report';
import { newRunId, runChecks, type PlannedCheck, type RunEnvironment } from '../core/runner';
import { Fingerprinter, processSecrets, type KnownSecrets } from '../core/secret';
import type { CheckResult, Report, Waiver } from '../core/types';
import { AuditError, ErrorCodes } from '../core/errors';
import { createSources } from '../sources';
import { createStateStore } from '../sources/state';

export interface AuditOptions {
  /** Run only these check ids (default: every enabled check). */
  only?: readonly string[];
  logger?: Logger;
  now?: () => Date;
  /** Active waivers; findings they cover are marked waived and don't fail the run. */
  waivers?: readonly Waiver[];
  expiredWaivers?: Waiver[];
  /** Shared across runs of a daemon so its keyed fingerprints stay comparable. */
  fingerprinter?: Fingerprinter;
  /** Where sources register what they read, and what the report is scrubbed with (default: the process's). */
  knownSecrets?: KnownSecrets;
  /** `run --full`: checks that verify incrementally from a checkpoint verify everything again. */
  full?: boolean;
  /**
   * Each check's result as soon as it finishes, before the run's report is built (the daemon
   * exports its status at once, so a long check does not hold back another's alert). It is not
   * yet scrubbed as a whole with what later checks read: use its status and counts, not its text.
   */
  onResult?: (result: CheckResult) => void;
  /** Told as long checks advance (rows processed so far): the CLI's progress line, the daemon's metrics. */
  onProgress?: RunEnvironment['onProgress'];
  /** A slot shared beyond this run that each check waits for (a fleet's bound on checks at once). */
  limit?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Replicas share work (`queue:`): the parts of a check's run any replica may take. */
  shared?: RunEnvironment['shared'];
}

/** The checks a run will execute: enabled in config (default on) and selected by `only`. */
export function planChecks(loaded: LoadedConfig, registry: Registry, only?: readonly string[]): PlannedCheck[] {
  const { config } = loaded;
  if (only) {
    const unknown = only.filter((id) => !registry.has(id));
    if (unknown.length > 0) {
      throw new AuditError(ErrorCodes.USAGE, `unknown check id${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${[...registry.keys()].join(', ')})`);
    }
  }
  const planned: PlannedCheck[] = [];
  for (const [id, check] of registry) {
    const settings = config.checks[id];
    if (only ? !only.includes(id) : settings?.enabled === false) continue;
    planned.push({
      check,
      options: loaded.checkOptions.get(id) ?? check.options.parse({}),
      timeoutMs: settings?.timeout ?? Math.max(check.meta.timeout ?? 0, config.run.timeout),
    });
  }
  return planned;
}

export async function runAudit(loaded: LoadedConfig, registry: Registry, opts: AuditOptions = {}): Promise<Report> {
  const { config } = loaded;
  const logger = opts.logger ?? silentLogger();
  const knownSecrets = opts.knownSecrets ?? processSecrets;
  const planned = planChecks(loaded, registry, opts.only);
  const now = opts.now ?? (() => new Date());
  const startedAt = now();
  const runId = newRunId();
  const sources = createSources(config, { knownSecrets, logger });
  const state = createStateStore(config);
  try {
    const results = await runChecks(planned, {
      deployment: config.deployment,
      services: config.services,
      sources: sources.sources,
      state,
      fingerprinter: opts.fingerprinter ?? new Fingerprinter(),
      knownSecrets,
      logger: logger.child({ runId }),
      waivers: opts.waivers,
      concurrency: config.run.concurrency,
      now: () => startedAt,
      full: opts.full,
      onResult: opts.onResult,
      onProgress: opts.onProgress,
      limit: opts.limit,
      shared: opts.shared,
    });
    // Scrubbed once more as a whole: a check that ran before another read a secret could not
    // scrub what it had reported with a value nobody knew yet.
    const report = buildReport({
      deployment: config.deployment,
      runId,
      configDigest: loaded.digest,
      startedAt,
      finishedAt: new Date(),
      results,
      expiredWaivers: opts.expiredWaivers,
    });
    return scrubReport(report, knownSecrets);
  } finally {
    await sources.close();
    await state.close?.();
  }
}

/**
 * Runs one part of a check's work (taken from the queue by a replica: DESIGN.md "Beyond one
 * machine") with this config's sources and the check's options; returns the part's result.
 * Throws when the check has no parts or the part fails (the queue then retries it).
 */
export async function runPart(
  loaded: LoadedConfig,
  registry: Registry,
  checkId: string,
  data: Record<string, unknown>,
  opts: { logger?: Logger; knownSecrets?: KnownSecrets; signal?: AbortSignal } = {},
): Promise<unknown> {
  const [planned] = planChecks(loaded, registry, [checkId]);
  const part = planned.check.part;
  if (!part) throw new AuditError(ErrorCodes.USAGE, `check ${checkId} has no parts to share`);
  const logger = (opts.logger ?? silentLogger()).child({ check: checkId });
  const sources = createSources(loaded.config, { knownSecrets: opts.knownSecrets ?? processSecrets, logger });
  try {
    return await part(
      {
        checkId,
        deployment: loaded.config.deployment,
        options: planned.options,
        sources: sources.sources,
        logger,
        signal: opts.signal ?? new AbortController().signal,
        source(name) {
          const s = sources.sources[name];
          if (s === undefined) throw new AuditError(ErrorCodes.SOURCE_NOT_CONFIGURED, `source '${name}' is not configured (sources.${name})`, { source: name });
          return s as NonNullable<(typeof sources.sources)[typeof name]>;
        },
      },
      data,
    );
  } finally {
    await sources.close();
  }
}
