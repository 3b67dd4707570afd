import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { AnyCheck, CheckContext, ReportDescriptor, SharedWork, SourceRequirement } from './define-check';
import { formatMessage } from './define-check';
import type { CheckResult, Finding, Measurement, Severity, Status, Waiver } from './types';
import type { SourceName, Sources, StateStore } from './sources';
import { AuditError, ErrorCodes, isAuditError } from './errors';
import { findingId } from './finding';
import { describeError, describeOwnError } from './redact';
import type { Fingerprinter, KnownSecrets } from './secret';
import type { Logger } from './logger';
import { findWaiver } from './waivers';

export interface PlannedCheck {
  check: AnyCheck;
  /** Options already validated against the check's schema (defaults applied). */
  options: unknown;
  timeoutMs: number;
}

export interface RunEnvironment {
  deployment: string;
  services: readonly string[];
  sources: Sources;
  state: StateStore;
  fingerprinter: Fingerprinter;
  knownSecrets: KnownSecrets;
  logger: Logger;
  waivers?: readonly Waiver[];
  concurrency?: number;
  now?: () => Date;
  /** `run --full`: incremental checks ignore their checkpoints this run. */
  full?: boolean;
  /** Called with each check's result as soon as it finishes (the daemon exports it at once); errors are ignored. */
  onResult?: (result: CheckResult) => void;
  /** Replicas share work: the parts of a check's run that any replica may take (ctx.shared). */
  shared?: (checkId: string) => SharedWork | undefined;
  /** Told as a long check advances (its ctx.progress calls). Must not throw. */
  onProgress?: (check: string, progress: CheckProgress) => void;
  /** Where each check waits for a slot shared beyond this run (a fleet's bound on checks at once); its timeout starts once it runs. */
  limit?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** A running check's progress: rows processed so far in this run, of `total` when known. */
export interface CheckProgress {
  done: number;
  total?: number;
  /** When the check started (epoch ms). */
  startedMs: number;
  /** The run has ended (sent once, last). */
  finished?: boolean;
}

/** Why a check cannot run with the configured sources, or undefined when it can. */
export function missingSources(reqs: readonly SourceRequirement[], sources: Sources): string | undefined {
  for (const req of reqs) {
    const alts: readonly SourceName[] = typeof req === 'string' ? [req] : req;
    if (!alts.some((s) => sources[s] !== undefined)) {
      return alts.length === 1
        ? `source '${alts[0]}' is not configured (sources.${alts[0]})`
        : `none of the sources ${alts.map((s) => `'${s}'`).join(', ')} is configured`;
    }
  }
  return undefined;
}

function statusOf(findings: readonly Finding[]): Status {
  return findings.some((f) => f.severity !== 'info' && !f.waived) ? 'fail' : 'pass';
}

/** Runs one check with its timeout; never throws: every failure becomes an `error` result. */
export async function runCheck(planned: PlannedCheck, env: RunEnvironment): Promise<CheckResult> {
  const { check } = planned;
  const meta = check.meta;
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const now = env.now ?? (() => new Date());
  const base = { check: meta.id, title: meta.title, severity: meta.severity, startedAt };
  const done = (r: Omit<CheckResult, keyof typeof base | 'durationMs'>): CheckResult => ({
    ...base,
    durationMs: Date.now() - started,
    ...r,
  });

  const missing = missingSources(meta.sources, env.sources);
  if (missing) return done({ status: 'skipped', error: missing, findings: [] });

  const findings: Finding[] = [];
  const measurements: Measurement[] = [];
  const controller = new AbortController();
  const logger = env.logger.child({ check: meta.id });
  const scrub = (s: string) => env.knownSecrets.scrub(s);

  let lastProgress: CheckProgress | undefined;
  const ctx: CheckContext<string, unknown> = {
    checkId: meta.id,
    deployment: env.deployment,
    services: env.services,
    options: planned.options,
    sources: env.sources,
    state: env.state,
    fingerprinter: env.fingerprinter,
    logger,
    signal: controller.signal,
    deadline: started + planned.timeoutMs,
    full: env.full ?? false,
    shared: env.shared?.(meta.id),
    now,
    report(d: ReportDescriptor<string>) {
      // A check abandoned at its timeout may still be running; its result is already final.
      if (controller.signal.aborted) throw new AuditError(ErrorCodes.TIMEOUT, `check ${meta.id} reported after its run ended`, { reason: 'timeout' });
      const template = check.messages[d.messageId];
      if (template === undefined) throw new AuditError(ErrorCodes.PLUGIN, `check ${meta.id} reported unknown messageId ${d.messageId}`);
      const severity: Severity = d.severity ?? meta.severity;
      // Evidence and messages are scrubbed of known secret values as a last line of defence
      // (text from the deployment has been through the gate, src/core/untrusted.ts, already).
      const evidence = env.knownSecrets.scrubDeep(d.evidence ?? {});
      const f: Finding = {
        id: findingId(meta.id, d.resource),
        check: meta.id,
        severity,
        resource: scrub(d.resource),
        messageId: d.messageId,
        message: scrub(formatMessage(template, d.data)),
        evidence,
        remediation: d.remediation ?? meta.remediation,
      };
      const waiver = env.waivers ? findWaiver(f, env.waivers, now()) : undefined;
      if (waiver) f.waived = waiver;
      findings.push(f);
    },
    measure(name: string, value: number, help: string) {
      if (controller.signal.aborted) return;
      measurements.push({ name, value, help });
    },
    progress(done: number, total?: number) {
      if (controller.signal.aborted || !env.onProgress || !Number.isFinite(done)) return;
      lastProgress = { done, total: total !== undefined && Number.isFinite(total) ? total : undefined, startedMs: started };
      try {
        env.onProgress(meta.id, lastProgress);
      } catch {
        // A display or a metric must never fail the check.
      }
    },
    source<K extends SourceName>(name: K): NonNullable<Sources[K]> {
      const s = env.sources[name];
      if (s === undefined) throw new AuditError(ErrorCodes.SOURCE_NOT_CONFIGURED, `source '${name}' is not configured (sources.${name})`, { source: name });
      return s as NonNullable<Sources[K]>;
    },
  };

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new AuditError(ErrorCodes.TIMEOUT, `timed out after ${planned.timeoutMs} ms`, { reason: 'timeout' }));
    }, planned.timeoutMs);
  });
  try {
    await Promise.race([check.run(ctx as CheckContext<never, z.output<z.ZodType>>), timeout]);
    logger.debug({ findings: findings.length }, 'Check finished');
    return done({ status: statusOf(findings), error: null, findings, measurements });
  } catch (e) {
    if (isAuditError(e) && e.code === ErrorCodes.SOURCE_NOT_CONFIGURED) {
      return done({ status: 'skipped', error: e.message, findings: [] });
    }
    const message = scrub(isAuditError(e) ? describeOwnError(e) : describeError(e));
    const code = isAuditError(e) ? e.code : ErrorCodes.CHECK_FAILED;
    const sourceErrors = isAuditError(e) && e.source ? [{ source: e.source, reason: e.reason ?? 'error' }] : undefined;
    logger.warn({ code, err: message }, 'Check could not be evaluated');
    return done({
      status: 'error',
      error: isAuditError(e) ? message : `check crashed: ${message}`,
      errorCode: code,
      sourceErrors,
      // Findings gathered before the failure are kept as evidence, but the status stays `error`.
      findings,
      measurements,
    });
  } finally {
    clearTimeout(timer);
    controller.abort();
    if (lastProgress && env.onProgress) {
      try {
        env.onProgress(meta.id, { ...lastProgress, finished: true });
      } catch {
        // as above
      }
    }
  }
}

/** Runs checks with bounded concurrency; results come back in the order the checks were given. */
export async function runChecks(planned: readonly PlannedCheck[], env: RunEnvironment): Promise<CheckResult[]> {
  const results: CheckResult[] = new Array(planned.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(env.concurrency ?? 4, planned.length)) }, async () => {
    while (next < planned.length) {
      const i = next++;
      results[i] = await (env.limit ? env.limit(() => runCheck(planned[i], env)) : runCheck(planned[i], env));
      try {
        env.onResult?.(results[i]);
      } catch (e) {
        env.logger.error({ check: planned[i].check.meta.id, err: describeError(e) }, 'Publishing a result failed');
      }
    }
  });
  await Promise.all(workers);
  return results;
}

export function newRunId(): string {
  return randomUUID();
}
