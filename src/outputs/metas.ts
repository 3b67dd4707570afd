import type { CheckMeta } from '../core/define-check';

/**
 * What the outputs need from a check's metadata beyond what the report carries: the
 * registry's description, runbook, remediation and checklist items, by check id.
 */
export type CheckMetaInfo = Pick<CheckMeta, 'description' | 'runbook' | 'remediation' | 'checklist'>;
export type CheckMetas = ReadonlyMap<string, CheckMetaInfo>;

/** Builds the metas map from a registry (or any list of checks). */
export function metasFromChecks(checks: Iterable<{ meta: CheckMeta }>): Map<string, CheckMetaInfo> {
  const m = new Map<string, CheckMetaInfo>();
  for (const { meta } of checks) {
    m.set(meta.id, { description: meta.description, runbook: meta.runbook, remediation: meta.remediation, checklist: meta.checklist });
  }
  return m;
}
