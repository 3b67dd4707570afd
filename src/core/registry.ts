import { z } from 'zod';
import cron from 'node-cron';
import { SEVERITIES } from './types';
import { SOURCE_NAMES } from './sources';
import { AuditError, ErrorCodes } from './errors';
import type { AnyCheck } from './define-check';

const sourceName = z.enum(SOURCE_NAMES as [string, ...string[]]);

const metaSchema = z.object({
  id: z.string().regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'must be kebab-case'),
  title: z
    .string()
    .min(10)
    .refine((t) => !/^ensure\b/i.test(t), 'states the passing condition, not "Ensure ..."'),
  description: z.string().min(10),
  severity: z.enum(SEVERITIES),
  sources: z.array(z.union([sourceName, z.array(sourceName).min(1)])),
  schedule: z.string().refine((s) => cron.validate(s), 'must be a valid cron expression'),
  checklist: z.array(z.string().regex(/^[a-z0-9-]+$/)),
  runbook: z.string().regex(/^docs\/runbooks\/[a-z0-9-]+\.md$/),
  remediation: z.string().min(10),
  timeout: z.number().int().positive().optional(),
});

/** Validates a check's metadata, messages and options; throws AUDIT_ERR_PLUGIN naming what is wrong. */
export function validateCheck(check: AnyCheck, where: string): void {
  const parsed = metaSchema.safeParse(check?.meta);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `meta.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new AuditError(ErrorCodes.PLUGIN, `${where}: invalid check metadata: ${issues}`);
  }
  if (!check.messages || Object.keys(check.messages).length === 0) {
    throw new AuditError(ErrorCodes.PLUGIN, `${where}: check ${check.meta.id} has no messages`);
  }
  if (typeof check.run !== 'function') {
    throw new AuditError(ErrorCodes.PLUGIN, `${where}: check ${check.meta.id} has no run function`);
  }
  const defaults = check.options?.safeParse?.({});
  if (!defaults || !defaults.success) {
    throw new AuditError(ErrorCodes.PLUGIN, `${where}: check ${check.meta.id}: options must be a zod schema whose every field has a default`);
  }
}

export type Registry = ReadonlyMap<string, AnyCheck>;

/** An explicit, frozen, alphabetised registry; duplicate ids are an error. */
export function buildRegistry(checks: readonly AnyCheck[], where = 'checks/index.ts'): Registry {
  const map = new Map<string, AnyCheck>();
  for (const c of [...checks].sort((a, b) => a.meta.id.localeCompare(b.meta.id))) {
    validateCheck(c, where);
    if (map.has(c.meta.id)) throw new AuditError(ErrorCodes.PLUGIN, `${where}: duplicate check id ${c.meta.id}`);
    map.set(c.meta.id, c);
  }
  return Object.freeze(map) as Registry;
}
