/**
 * Wording problems in hand-edited YAML (audit.yaml, waivers, attestations) the same way
 * everywhere: `file:line:col: path: what was expected`.
 */
import { visit, type Document, type LineCounter } from 'yaml';
import type { z } from 'zod';

export type PathKey = string | number;

/** Keys are the file's own text, but a message shows at most this much of one. */
const MAX_KEY_SHOWN = 64;

/** A key of the file as a message shows it: cut when long (a 10 MB key is not repeated back). */
export function shownKey(key: string): string {
  const chars = [...key];
  return chars.length > MAX_KEY_SHOWN ? `${chars.slice(0, MAX_KEY_SHOWN - 16).join('')}… (${chars.length} characters)` : key;
}

export function fmtPath(path: readonly PathKey[]): string {
  return path.length === 0 ? '(top level)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : shownKey(p))).join('.').replace(/\.\[/g, '[');
}

/** `line:col` of the node at `path`, or of its nearest existing parent (a missing key is reported there). */
export function yamlLocation(doc: Document, lc: LineCounter, path: readonly PathKey[]): string {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node && node.range) {
      const { line, col } = lc.linePos(node.range[0]);
      return `${line}:${col}`;
    }
  }
  return '1:1';
}

/** A zod issue in words a person editing the file understands. */
export function issueText(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    const input = (issue as { input?: unknown }).input;
    const got = input === undefined ? 'nothing' : input === null ? 'null' : Array.isArray(input) ? 'a list' : typeof input;
    return `expected ${issue.expected}, got ${got}`;
  }
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${shownKey(k)}"`).join(', ')}`;
  // A record's key that fails its own schema: say why (the key is in the path).
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return `not a valid name: ${issue.issues.map((i) => i.message).join('; ')}`;
  return issue.message;
}

/** Alias uses a document may expand to (the `yaml` package's measure): enough for shared settings, far from a "billion laughs". */
export const MAX_YAML_ALIAS_COUNT = 100;

/**
 * The document's value, refusing YAML built to exhaust the process: an alias inside its own
 * anchor (a value without end: walking it overflows the stack) and aliases that expand too
 * far. The problem reads `file:line:col: what`, or `file: what` when no place applies.
 */
export function yamlValue(doc: Document, lc: LineCounter, file: string): { value: unknown } | { problem: string } {
  let problem: string | undefined;
  visit(doc, {
    Alias(_key, node, path) {
      const target = node.resolve(doc);
      if (target && path.includes(target)) {
        const { line, col } = lc.linePos(node.range?.[0] ?? 0);
        problem = `${file}:${line}:${col}: the alias *${node.source} refers to itself (it is inside the value anchored &${node.source}); such a value never ends`;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (problem) return { problem };
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT }) as unknown };
  } catch (e) {
    if (e instanceof ReferenceError && /alias/i.test(e.message)) {
      return { problem: `${file}: YAML aliases expand to too much (more than ${MAX_YAML_ALIAS_COUNT} alias uses); write the values out or use fewer aliases` };
    }
    return { problem: `${file}: the YAML cannot be read (${e instanceof Error ? e.name : 'error'})` };
  }
}
