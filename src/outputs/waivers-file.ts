/**
 * The waivers file: who accepted which finding, why, and until when.
 *
 * ```yaml
 * waivers:
 *   - check: credential-age
 *     resource: "api_key=legacy-*"      # `*` matches any run of characters
 *     justification: Legacy partner key, replaced in the Q3 migration
 *     approver: jane.doe
 *     ticket: SEC-1234
 *     expires: 2026-03-31               # required; at most waiver_max_lifetime from now
 * ```
 * Every waiver expires, and not too far out: a waiver is a decision with a date on it.
 * An expired waiver covers nothing (core/waivers.ts) and is reported so someone renews or
 * removes it; `lintWaivers` reports it as a problem too.
 */
import { z } from 'zod';
import type { Waiver } from '../core/types';
import { AuditError, ErrorCodes } from '../core/errors';
import { parseExpiry, parseYamlFile, validateAt } from './yaml-file';
import { readSmallFile } from '../config/files';

export const DEFAULT_WAIVER_MAX_LIFETIME_MS = 90 * 86_400_000;

const text = z.string().trim().min(1, 'must not be empty');

const waiverEntry = z
  .object({
    check: z.string().regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'a check id (kebab-case)'),
    resource: text,
    justification: text,
    approver: text,
    ticket: text,
    // Accept what YAML gives for an unquoted date-time too (a string in YAML 1.2).
    expires: z.string().refine((s) => Number.isFinite(parseExpiry(s)), 'an ISO 8601 date or date-time, e.g. 2026-03-31'),
  })
  .strict();

export const waiversFileSchema = z.object({ waivers: z.array(waiverEntry).default([]) }).strict();
// Entries are validated one by one, so one bad entry does not hide the problems of the others.
const fileShape = z.object({ waivers: z.array(z.unknown()).default([]) }).strict();

export interface WaiverOptions {
  /** Check ids of the registry; a waiver for any other id is a problem. Omit to skip the check. */
  knownChecks?: Iterable<string>;
  /** The config's `waiver_max_lifetime` (default 90 days). */
  maxLifetimeMs?: number;
  now?: Date;
}

export interface WaiversCheck {
  /** Waivers as loaded, `expires` normalised to an ISO date-time (a bare date means the end of that day, UTC). */
  waivers: Waiver[];
  /** Problems that make the file invalid (schema, unknown check, lifetime too long). */
  errors: string[];
  /** Waivers that expired: not an invalid file, but reported (and a lint problem). */
  expiredProblems: string[];
  expired: Waiver[];
  active: Waiver[];
}

function fmtMs(ms: number): string {
  const d = ms / 86_400_000;
  return Number.isInteger(d) ? `${d}d` : `${Math.round(ms / 3_600_000)}h`;
}

/** Validates waivers text; never throws for content problems (they are returned). */
export function checkWaivers(source: string, file: string, opts: WaiverOptions = {}): WaiversCheck {
  const now = opts.now ?? new Date();
  const maxLifetime = opts.maxLifetimeMs ?? DEFAULT_WAIVER_MAX_LIFETIME_MS;
  const known = opts.knownChecks ? new Set(opts.knownChecks) : undefined;
  const parsed = parseYamlFile(source, file, fileShape);
  const out: WaiversCheck = { waivers: [], errors: [...parsed.problems], expiredProblems: [], expired: [], active: [] };
  if (!parsed.value) return out;

  parsed.value.waivers.forEach((raw, i) => {
    const at = (key: string) => `${parsed.at(['waivers', i, key])}: waivers[${i}].${key}`;
    const entryResult = validateAt(waiverEntry, raw, parsed.at, ['waivers', i]);
    if (!entryResult.success) {
      out.errors.push(...entryResult.problems);
      // An unknown check id is still worth naming even when another field is wrong.
      const check = (raw as { check?: unknown } | null)?.check;
      if (known && typeof check === 'string' && !known.has(check)) out.errors.push(`${at('check')}: unknown check id "${check}" (known: ${[...known].sort().join(', ')})`);
      return;
    }
    const w = entryResult.value;
    if (known && !known.has(w.check)) {
      out.errors.push(`${at('check')}: unknown check id "${w.check}" (known: ${[...known].sort().join(', ')})`);
    }
    const expiresMs = parseExpiry(w.expires);
    const waiver: Waiver = { ...w, expires: new Date(expiresMs).toISOString() };
    out.waivers.push(waiver);
    if (expiresMs <= now.getTime()) {
      out.expiredProblems.push(`${at('expires')}: expired on ${waiver.expires}; it covers nothing: renew it (new expiry, approver, ticket) or remove it`);
      out.expired.push(waiver);
      return;
    }
    if (expiresMs - now.getTime() > maxLifetime) {
      out.errors.push(
        `${at('expires')}: ${waiver.expires} is more than waiver_max_lifetime (${fmtMs(maxLifetime)}) from now; waivers must be renewed, not open-ended`,
      );
    }
    out.active.push(waiver);
  });
  return out;
}

/** A regular file of at most 1 MiB, read within a deadline (see config/files.ts). */
function readText(file: string): Promise<string> {
  return readSmallFile(file, { noun: 'waivers file', readLabel: 'the waivers file' });
}

/**
 * `aegis-audit waivers lint FILE`: every problem as `file:line:col: path: message`,
 * expired waivers included. An empty list means the file is good.
 */
export async function lintWaivers(file: string, opts: WaiverOptions = {}): Promise<string[]> {
  let source: string;
  try {
    source = await readText(file);
  } catch (e) {
    return [(e as Error).message];
  }
  const r = checkWaivers(source, file, opts);
  return [...r.errors, ...r.expiredProblems];
}

/** Exit code for `waivers lint`: 0 when there is no problem, 1 otherwise. */
export function waiversLintExitCode(problems: readonly string[]): 0 | 1 {
  return problems.length === 0 ? 0 : 1;
}

/**
 * Loads waivers for a run: active ones go to the runner, expired ones into the report.
 * An invalid file stops the run (AUDIT_ERR_CONFIG, exit 2) rather than silently waiving
 * nothing — or too much.
 */
export async function loadWaivers(file: string, opts: WaiverOptions = {}): Promise<{ active: Waiver[]; expired: Waiver[] }> {
  const r = checkWaivers(await readText(file), file, opts);
  if (r.errors.length > 0) {
    throw new AuditError(ErrorCodes.CONFIG, `invalid waivers file:\n  ${r.errors.join('\n  ')}`);
  }
  return { active: r.active, expired: r.expired };
}
