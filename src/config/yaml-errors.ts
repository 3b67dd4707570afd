/**
 * Wording problems in hand-edited YAML (audit.yaml, waivers, attestations) the same way
 * everywhere: `file:line:col: path: what was expected`.
 */
import type { Document, LineCounter } from 'yaml';
import type { z } from 'zod';

export type PathKey = string | number;

export function fmtPath(path: readonly PathKey[]): string {
  return path.length === 0 ? '(top level)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[');
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
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}
