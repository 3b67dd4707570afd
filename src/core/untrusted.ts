/**
 * The one gate for text read from the audited deployment. Log fields, database text, SSM
 * and Vault names, HTTP bodies: all of it is hostile (it may hold a secret a service logged
 * by mistake, markup, control characters, or megabytes), and it reaches a finding's
 * message, resource or evidence only through these functions:
 *
 * - {@link untrusted.oneOf} — an enumerated field (`source: env | file | generated`): only
 *   a known value is shown; anything else is "unrecognised value, N characters".
 * - {@link untrusted.matching} — a field with a fixed shape (a key fingerprint, a command
 *   id): shown when it has that shape, else "unrecognised value, N characters".
 * - {@link untrusted.text} — free text (an instance name, a client address): one line,
 *   bounded, and scrubbed of every secret this process has read and of anything shaped like
 *   a secret (PEM blocks, JWTs, `acp_` keys, bearer, Vault and AWS tokens, long random
 *   tokens) even when no source ever read it.
 * - {@link untrusted.id} — free text that identifies a finding (in `resource`): as `text`,
 *   with a longer bound, and distinct inputs stay distinct after cutting or scrubbing.
 * - {@link untrusted.shaped} — a fixed-shape value that is also compared, grouped or stored
 *   (a row hash, a key fingerprint): itself when it has the shape, else a stand-in showing its
 *   length and a short digest, so equal values stay equal and different ones different.
 *
 * ```ts
 * const source = untrusted.oneOf(ev.fields.source, ['env', 'file', 'generated']);
 * ctx.report({ messageId: 'bad', data: { instance: untrusted.text(instance), source },
 *              resource: resource({ instance: untrusted.id(instance) }), ... });
 * ```
 */
import { createHash } from 'node:crypto';
import { scrubSecretShapes } from './redact';
import { processSecrets } from './secret';

/** What a message shows for a value it may not show. */
export function unrecognised(value: unknown): string {
  if (value === undefined || value === null) return '(missing)';
  if (typeof value === 'string') return `unrecognised value, ${[...value].length} characters`;
  return `unrecognised value (${Array.isArray(value) ? 'a list' : typeof value})`;
}

/** Longest input looked at: free text beyond this is never shown, so it is never scanned. */
const MAX_SCANNED = 16_384;
/** Line breaks, other control characters, and the Unicode ones that reorder or hide text. */
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const DEFAULT_TEXT_MAX = 64;
const DEFAULT_ID_MAX = 200;
const MAX_SHAPED = 256;
const STAND_IN_RE = /^unrecognised value, \d+ characters #[0-9a-f]{12}$/;

function cut(s: string, max: number): string {
  const chars = [...s];
  return chars.length > max ? chars.slice(0, Math.max(1, max - 1)).join('') + '…' : s;
}

function freeText(value: unknown, max: number): string {
  if (value === undefined || value === null) return '(missing)';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value !== 'string') return unrecognised(value);
  // Scrub before cutting: a secret cut in half no longer has the shape that finds it.
  const flat = value.slice(0, MAX_SCANNED).replace(CONTROL_RE, ' ');
  const scrubbed = scrubSecretShapes(processSecrets.scrub(flat)).replace(/\s+/g, ' ').trim();
  return scrubbed === '' ? '(empty)' : cut(scrubbed, max);
}

export const untrusted = Object.freeze({
  /**
   * An enumerated field: the value itself when it is one of `known`, otherwise
   * "unrecognised value, N characters" ("(missing)" when absent). Never any of its text.
   */
  oneOf<const T extends string>(value: unknown, known: readonly T[]): T | string {
    return typeof value === 'string' && (known as readonly string[]).includes(value) ? (value as T) : unrecognised(value);
  },

  /**
   * A field with a fixed shape: the value when the whole of it matches `shape` (anchor the
   * pattern: `^…$`), otherwise "unrecognised value, N characters".
   */
  matching(value: unknown, shape: RegExp): string {
    if (typeof value !== 'string' || value.length > MAX_SHAPED) return unrecognised(value);
    shape.lastIndex = 0;
    return shape.test(value) ? value : unrecognised(value);
  },

  /**
   * A fixed-shape value that is also compared, grouped or stored (a row hash, a key
   * fingerprint): the value when the whole of it matches `shape`, otherwise
   * "unrecognised value, N characters #<12 hex digits of its SHA-256>" — none of its text,
   * but the same stand-in for the same value, so a chain link, a tally by fingerprint or a
   * checkpoint still works on it. Sources apply it where such values enter.
   */
  shaped(value: string, shape: RegExp): string {
    if (value.length <= MAX_SHAPED) {
      shape.lastIndex = 0;
      // A stand-in stays itself: applying the gate twice changes nothing.
      if (shape.test(value) || STAND_IN_RE.test(value)) return value;
    }
    return `${unrecognised(value)} #${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12)}`;
  },

  /**
   * Free text for a message or evidence: on one line (control and invisible characters
   * become spaces), scrubbed of known secrets and secret shapes, at most `max` characters
   * (cut with "…"). Absent is "(missing)", blank is "(empty)".
   */
  text(value: unknown, max: number = DEFAULT_TEXT_MAX): string {
    return freeText(value, max);
  },

  /**
   * Free text that names what a finding is about (a `resource` value, which also makes the
   * finding's stable id): as {@link untrusted.text} with a longer bound; when cutting or
   * scrubbing changed it, a short digest of the original keeps two different names apart.
   */
  id(value: unknown, max: number = DEFAULT_ID_MAX): string {
    const shown = freeText(value, max);
    if (typeof value !== 'string' || shown === value) return shown;
    return `${shown}~${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 8)}`;
  },
});
