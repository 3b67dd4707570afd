import { createHash } from 'node:crypto';

/** A finding's stable id: the same check and resource give the same id run after run. */
export function findingId(checkId: string, resource: string): string {
  return createHash('sha256').update(`${checkId}\n${resource}`, 'utf8').digest('hex').slice(0, 16);
}

/** Builds a `key=value,key=value` resource string; values with separators are quoted. */
export function resource(parts: Record<string, string | number>): string {
  return Object.entries(parts)
    .map(([k, v]) => {
      const s = String(v);
      return `${k}=${/[,=\s"]/.test(s) ? JSON.stringify(s) : s}`;
    })
    .join(',');
}
