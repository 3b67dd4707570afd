import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Evidence, Severity } from './types';
import type { SourceName, Sources, StateStore } from './sources';
import type { Fingerprinter } from './secret';

/**
 * A source requirement: one source name, or a list of alternatives of which any one
 * will do (`['logs', 'prometheus']`). A requirement none of whose sources is configured
 * makes the check `skipped` with the reason.
 */
export type SourceRequirement = SourceName | readonly SourceName[];

/** Static metadata of a check. Validated when the registry loads. */
export interface CheckMeta {
  /** kebab-case; equals the file name under `checks/`, the metric label and the alert's `check` label. */
  id: string;
  /** The passing condition, e.g. "Historical signing keys are recorded after rotation". */
  title: string;
  /** One or two sentences: what a pass proves, and why it matters. */
  description: string;
  severity: Severity;
  sources: readonly SourceRequirement[];
  /** Default cron schedule for the daemon; config may override. */
  schedule: string;
  /** Pre-pilot checklist items this check evidences. */
  checklist: readonly string[];
  /** Repository-relative path of the runbook. */
  runbook: string;
  remediation: string;
  /**
   * Default timeout (ms) for a check whose work grows with the deployment (a chain of a
   * million rows); the run's `run.timeout` applies when it is longer, and
   * `checks.<id>.timeout` overrides both.
   */
  timeout?: number;
  /**
   * Integrity and leak checks (a tampered audit row, a secret at rest): one failing run is the
   * incident, so its alert pages on the first failing run. Other checks page when the next
   * run fails too (alerts/generate.mjs derives the alerts' timing from the schedule).
   */
  pagesOnFirstFailure?: boolean;
}

export interface ReportDescriptor<M extends string> {
  messageId: M;
  /** Values for the message's `{{placeholders}}`. Never a secret. */
  data?: Record<string, string | number>;
  /** `key=value[,key=value]`; with the check id it makes the finding's stable id. */
  resource: string;
  evidence?: Evidence;
  /** Defaults to the check's severity. `info` findings are notes: they do not fail the check. */
  severity?: Severity;
  remediation?: string;
}

/** What a check's `run` receives. */
export interface CheckContext<M extends string = string, O = unknown> {
  readonly checkId: string;
  readonly deployment: string;
  readonly services: readonly string[];
  readonly options: O;
  readonly sources: Sources;
  readonly state: StateStore;
  readonly fingerprinter: Fingerprinter;
  readonly logger: Logger;
  /** Aborted when the check's timeout passes; long loops must watch it. */
  readonly signal: AbortSignal;
  /**
   * When the runner aborts the check (epoch ms, wall clock). A long pass stops a little
   * before, keeps its progress and says how far it came, instead of being cut off.
   */
  readonly deadline: number;
  /** The run was asked to start over (`run --full`): a check that works incrementally from its state re-verifies everything. */
  readonly full: boolean;
  /** The run's clock (fixed per run so every check agrees on "now"). */
  now(): Date;
  report(d: ReportDescriptor<M>): void;
  /** A figure the check measured, exported as a metric (e.g. auth failures in the window). */
  measure(name: string, value: number, help: string): void;
  /**
   * How far a long run has come: `done` rows (or items) processed so far in this run, of
   * `total` when known. Cheap: call it as the work advances; the CLI shows it, the daemon
   * exports it while the run is still going.
   */
  progress(done: number, total?: number): void;
  /** A source the check needs; throws SOURCE_NOT_CONFIGURED (→ skipped) when it is not configured. */
  source<K extends SourceName>(name: K): NonNullable<Sources[K]>;
  /**
   * Replicas sharing work (`queue:` in config): a long run can hand parts of its work to any
   * replica (the check's `part`) and read their results back. Absent on a single process.
   */
  readonly shared?: SharedWork;
}

/** Parts of one check's work that any replica may run (DESIGN.md "Beyond one machine"). */
export interface SharedWork {
  /** Plans the parts of a pass and queues them; a pass planned before keeps its parts. `expireInMs`: how long a part may run before it is taken for dead and run elsewhere. */
  submit(pass: string, parts: readonly { index: number; data: Record<string, unknown> }[], expireInMs: number): Promise<void>;
  /** The parts of a pass that are done, by index, with their results (as `part` returned them, through JSON). */
  results(pass: string): Promise<Map<number, unknown>>;
}

/** What a check's `part` runs with, on whichever replica took the part. */
export interface PartContext<O = unknown> {
  readonly checkId: string;
  readonly deployment: string;
  readonly options: O;
  readonly sources: Sources;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  source<K extends SourceName>(name: K): NonNullable<Sources[K]>;
}

export interface CheckDefinition<M extends Record<string, string> = Record<string, string>, S extends z.ZodType = z.ZodType> {
  meta: CheckMeta;
  messages: M;
  options: S;
  run(ctx: CheckContext<Extract<keyof M, string>, z.output<S>>): Promise<void>;
  /** One part of a run's work handed to any replica (ctx.shared); returns plain JSON. */
  part?(ctx: PartContext<z.output<S>>, data: Record<string, unknown>): Promise<unknown>;
  /**
   * Loads now what run() would load on first use (a parser, a native library, a worker pool's
   * module): loading is synchronous. The daemon calls it before it listens, so its first cycle
   * does not hold up /metrics and /healthz; a one-shot command never calls it.
   */
  preload?(): void;
}

/** A check as the registry holds it, with its types erased. */
export type AnyCheck = CheckDefinition<Record<string, string>, z.ZodType>;

/**
 * Defines a check. Generic over message ids and options, so a misspelt message id or
 * a wrong option type fails at compile time (as typescript-eslint's RuleCreator does).
 */
export function defineCheck<const M extends Record<string, string>, S extends z.ZodType>(
  def: CheckDefinition<M, S>,
): CheckDefinition<M, S> {
  return Object.freeze(def);
}

/** Fills `{{name}}` placeholders; a missing value is left visible rather than silently blanked. */
export function formatMessage(template: string, data: Record<string, string | number> = {}): string {
  return template.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (m, key: string) =>
    Object.prototype.hasOwnProperty.call(data, key) ? String(data[key]) : m,
  );
}
