/**
 * Small YAML files people edit by hand (waivers, attestations): parsed with line numbers
 * and validated with zod, so every problem reads `file:line:col: path: message`.
 */
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { fmtPath, issueText, yamlLocation, yamlValue, type PathKey } from '../config/yaml-errors';

export type { PathKey } from '../config/yaml-errors';
export { fmtPath } from '../config/yaml-errors';

export interface ParsedYaml<T> {
  /** Undefined when the file is not valid YAML or does not match the schema. */
  value?: T;
  problems: string[];
  /** `file:line:col` of the node at `path` (or its nearest existing parent). */
  at(path: readonly PathKey[]): string;
}

export function parseYamlFile<S extends z.ZodType>(text: string, file: string, schema: S): ParsedYaml<z.output<S>> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (path: readonly PathKey[]) => `${file}:${yamlLocation(doc, lc, path)}`;
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const { line, col } = lc.linePos(e.pos[0]);
    return { problems: [`${file}:${line}:${col}: invalid YAML: ${e.message.split('\n')[0]}`], at };
  }
  const js = yamlValue(doc, lc, file);
  if ('problem' in js) return { problems: [js.problem], at };
  const parsed = validateAt(schema, js.value, at, []);
  return parsed.success ? { value: parsed.value, problems: [], at } : { problems: parsed.problems, at };
}

/** Validates `value` (found at `prefix` in the file) and words every issue as `file:line:col: path: message`. */
export function validateAt<S extends z.ZodType>(
  schema: S,
  value: unknown,
  at: (path: readonly PathKey[]) => string,
  prefix: readonly PathKey[],
): { success: true; value: z.output<S> } | { success: false; problems: string[] } {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return { success: true, value: parsed.data };
  const problems = parsed.error.issues.map((issue) => {
    const path = [...prefix, ...issue.path.filter((p): p is PathKey => typeof p !== 'symbol')];
    // A missing key is reported at its parent, but named in full.
    return `${at(path)}: ${fmtPath(path)}: ${issueText(issue)}`;
  });
  return { success: false, problems };
}

/** ISO 8601 date or date-time → epoch ms; a bare date means the end of that day (UTC), as people write "expires 2026-03-31". */
export function parseExpiry(s: string): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.parse(`${s}T23:59:59.999Z`);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(s)) return NaN;
  return Date.parse(s);
}

/** ISO 8601 date or date-time → epoch ms (a bare date is the start of that day, UTC). */
export function parseInstant(s: string): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.parse(`${s}T00:00:00.000Z`);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(s)) return NaN;
  return Date.parse(s);
}
