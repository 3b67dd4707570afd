/**
 * Table-driven tests for checks, after ESLint's RuleTester: each case names its fake
 * sources and options and says what must come out — `pass` (with any info notes), `fail`
 * (the exact set of findings, order-insensitive) or `error` (a message pattern). Every case
 * runs through the real runner (`runCheck`), so skips, timeouts and error wrapping behave
 * as in production. The harness itself rejects duplicate case names, options the check's
 * schema refuses and unknown message ids, and checks that no secret value held by the
 * fakes reaches a finding, an error or the stored state (the canary).
 */
import type { AnyCheck } from '../../src/core/define-check';
import { runCheck, type CheckProgress } from '../../src/core/runner';
import { Fingerprinter, KnownSecrets } from '../../src/core/secret';
import { silentLogger } from '../../src/core/logger';
import type { CheckResult, Severity } from '../../src/core/types';
import type { Sources, StateStore } from '../../src/core/sources';
import { MemoryStateStore } from '../fakes/state-store';
import { findLeaks } from './canary';

/** The run's fixed clock unless a case sets `now`. */
export const DEFAULT_NOW = new Date('2026-11-22T12:00:00.000Z');

export interface ExpectedFinding {
  messageId: string;
  resource: string;
  severity?: Severity;
  /** The rendered message must match. */
  message?: RegExp;
  /** The evidence must contain these fields (toMatchObject). */
  evidence?: Record<string, unknown>;
}

export interface CaseBase {
  name: string;
  /** Sources of the run; a function builds fresh fakes per run. */
  sources: Sources | (() => Sources);
  /** Raw options, as in config; validated (and defaulted) through the check's schema. */
  options?: Record<string, unknown>;
  state?: StateStore;
  now?: Date;
  deployment?: string;
  services?: string[];
  timeoutMs?: number;
  /** `run --full`: incremental checks ignore their checkpoints. */
  full?: boolean;
  /** Told as the check advances (its ctx.progress calls), as a progress display is. */
  onProgress?: (check: string, progress: CheckProgress) => void;
  /** Secret values beyond those of a FakeSecretStore that must never appear in output. */
  secrets?: string[];
  /** Extra assertions on the result (measurements, messages). */
  verify?: (result: CheckResult) => void | Promise<void>;
}

export interface PassCase extends CaseBase {
  /** Info findings (notes) expected alongside the pass; default none. */
  notes?: ExpectedFinding[];
}

export interface FailCase extends CaseBase {
  findings: ExpectedFinding[];
}

export interface ErrorCase extends CaseBase {
  error: RegExp;
  /** Expected AuditError code, e.g. AUDIT_ERR_SOURCE_UNAVAILABLE. */
  code?: string;
}

export interface CheckTables {
  pass: PassCase[];
  fail: FailCase[];
  error: ErrorCase[];
}

export interface TesterOptions {
  /** Message ids exercised by hand-written tests in the same file rather than the tables. */
  coveredElsewhere?: string[];
}

export interface RunOutcome {
  result: CheckResult;
  state: StateStore;
  sources: Sources;
}

function resolveSources(c: CaseBase): Sources {
  return typeof c.sources === 'function' ? c.sources() : c.sources;
}

/** Validates a case's options through the check's own schema (as config loading does). */
export function parseOptions(check: AnyCheck, options: Record<string, unknown> | undefined, where: string): unknown {
  const parsed = check.options.safeParse(options ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${where}: options rejected by ${check.meta.id}'s schema: ${issues}`);
  }
  return parsed.data;
}

/** Runs one case through the real runner. Known secrets are NOT registered, so a leak is visible rather than scrubbed. */
export async function runCase(check: AnyCheck, c: CaseBase, env: { sources?: Sources; state?: StateStore } = {}): Promise<RunOutcome> {
  const sources = env.sources ?? resolveSources(c);
  const state = env.state ?? c.state ?? new MemoryStateStore();
  const now = c.now ?? DEFAULT_NOW;
  const result = await runCheck(
    { check, options: parseOptions(check, c.options, `${check.meta.id} case "${c.name}"`), timeoutMs: c.timeoutMs ?? 10_000 },
    {
      deployment: c.deployment ?? 'test',
      services: c.services ?? ['identity', 'gateway', 'api', 'audit', 'insight'],
      sources,
      state,
      fingerprinter: new Fingerprinter(),
      knownSecrets: new KnownSecrets(),
      logger: silentLogger(),
      now: () => now,
      full: c.full,
      onProgress: c.onProgress,
    },
  );
  return { result, state, sources };
}

/** Every planted secret a case's fakes hold: values of the secret store, Vault KV values, and the case's own. */
export function plantedSecrets(outcome: RunOutcome, extra: readonly string[] = []): string[] {
  const values = [...extra];
  for (const source of Object.values(outcome.sources)) {
    const planted = (source as { secretValues?: () => string[] } | undefined)?.secretValues;
    if (typeof planted === 'function') values.push(...planted.call(source));
  }
  return values;
}

/**
 * Fails when any planted secret value (or an 8-character piece of one) appears in the result
 * or the stored state: a plain substring search (test/helpers/canary.ts), never the
 * product's scrubber, so a broken scrubber cannot hide a leak.
 */
export function expectNoSecrets(outcome: RunOutcome, extra: readonly string[] = []): void {
  const texts: [string, string][] = [['result', JSON.stringify(outcome.result)]];
  if (outcome.state instanceof MemoryStateStore) texts.push(['stored state', outcome.state.dump()]);
  const leaks = findLeaks(plantedSecrets(outcome, extra), texts);
  if (leaks.length > 0) throw new Error(`a secret value (or a piece of one) reached the output: ${leaks.slice(0, 5).join('; ')}`);
}

function key(f: { messageId: string; resource: string }): string {
  return `${f.messageId} ${f.resource}`;
}

/** Asserts the result's findings are exactly `expected` (order-insensitive). */
export function expectFindings(result: CheckResult, expected: readonly ExpectedFinding[]): void {
  expect(result.findings.map(key).sort()).toEqual(expected.map(key).sort());
  for (const e of expected) {
    const f = result.findings.find((x) => key(x) === key(e));
    if (!f) continue;
    if (e.severity) expect({ finding: key(e), severity: f.severity }).toEqual({ finding: key(e), severity: e.severity });
    if (e.message) expect(f.message).toMatch(e.message);
    if (e.evidence) expect(f.evidence).toMatchObject(e.evidence);
  }
}

export const CheckTester = {
  run(check: AnyCheck, tables: CheckTables, opts: TesterOptions = {}): void {
    const id = check.meta.id;
    const names = new Set<string>();
    const all: CaseBase[] = [...tables.pass, ...tables.fail, ...tables.error];
    for (const c of all) {
      if (names.has(c.name)) throw new Error(`${id}: duplicate case name "${c.name}"`);
      names.add(c.name);
      // Fail at collection time: a table with bad options or a misspelt id is a broken test, not a failing check.
      parseOptions(check, c.options, `${id} case "${c.name}"`);
    }
    const expectedIds = [
      ...tables.pass.flatMap((c) => (c.notes ?? []).map((n) => n.messageId)),
      ...tables.fail.flatMap((c) => c.findings.map((f) => f.messageId)),
    ];
    for (const m of [...expectedIds, ...(opts.coveredElsewhere ?? [])]) {
      if (!Object.prototype.hasOwnProperty.call(check.messages, m)) throw new Error(`${id}: unknown messageId "${m}"`);
    }
    for (const c of tables.fail) {
      if (c.findings.length === 0) throw new Error(`${id} fail case "${c.name}": expects no findings (use a pass case)`);
    }

    describe(`${id} (CheckTester)`, () => {
      test('the tables exercise every messageId', () => {
        const covered = new Set([...expectedIds, ...(opts.coveredElsewhere ?? [])]);
        expect(Object.keys(check.messages).filter((m) => !covered.has(m))).toEqual([]);
      });

      if (tables.pass.length > 0) describe('pass', () => {
        test.each(tables.pass.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
          const outcome = await runCase(check, c);
          expect({ status: outcome.result.status, error: outcome.result.error }).toEqual({ status: 'pass', error: null });
          expectFindings(outcome.result, c.notes ?? []);
          for (const f of outcome.result.findings) expect(f.severity).toBe('info');
          expectNoSecrets(outcome, c.secrets);
          await c.verify?.(outcome.result);
        });
      });

      if (tables.fail.length > 0) describe('fail', () => {
        test.each(tables.fail.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
          const outcome = await runCase(check, c);
          expect({ status: outcome.result.status, error: outcome.result.error }).toEqual({ status: 'fail', error: null });
          expectFindings(outcome.result, c.findings);
          expectNoSecrets(outcome, c.secrets);
          await c.verify?.(outcome.result);
        });
      });

      if (tables.error.length > 0) describe('error', () => {
        test.each(tables.error.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
          const outcome = await runCase(check, c);
          expect(outcome.result.status).toBe('error');
          expect(outcome.result.error).toMatch(c.error);
          if (c.code) expect(outcome.result.errorCode).toBe(c.code);
          expectNoSecrets(outcome, c.secrets);
          await c.verify?.(outcome.result);
        });
      });
    });
  },
};
