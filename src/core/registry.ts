import { z } from 'zod';
import cron from 'node-cron';
import { SEVERITIES } from './types';
import { SOURCE_NAMES } from './sources';
import { AuditError, ErrorCodes } from './errors';
import { CHECKLIST_IDS } from './checklist';
import type { AnyCheck, CheckMeta } from './define-check';

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
  pagesOnFirstFailure: z.boolean().optional(),
});

/** A plugin's runbook lives with the plugin: a path (made absolute on load) or an http(s) URL. */
const externalMetaSchema = metaSchema.extend({
  runbook: z.string().regex(/^(https?:\/\/\S+|[^\s]+\.md)$/, 'a Markdown file beside the plugin, or an http(s) URL'),
});

/**
 * The option names a check accepts: its options are a `z.object({...})` whose keys are the
 * options (config `checks.<id>.options.<key>`). Undefined when the schema is not an object.
 */
export function optionKeys(check: Pick<AnyCheck, 'options'>): string[] | undefined {
  const shape = (check.options as { shape?: unknown } | undefined)?.shape;
  return shape && typeof shape === 'object' ? Object.keys(shape) : undefined;
}

/**
 * Validates a check's metadata, messages and options; throws AUDIT_ERR_PLUGIN naming what is
 * wrong. `external` (plugins) lets the runbook live beside the plugin instead of docs/runbooks/.
 */
export function validateCheck(check: AnyCheck, where: string, opts: { external?: boolean } = {}): void {
  if (!check || typeof check !== 'object') {
    throw new AuditError(ErrorCodes.PLUGIN, `${where}: expected a check (defineCheck({ meta, messages, options, run })), got ${check === null ? 'null' : typeof check}`);
  }
  const parsed = (opts.external ? externalMetaSchema : metaSchema).safeParse(check.meta);
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
  if (!optionKeys(check)) {
    throw new AuditError(ErrorCodes.PLUGIN, `${where}: check ${check.meta.id}: options must be a zod object, z.object({ ... }) (use z.object({}) for none)`);
  }
  const defaults = check.options.safeParse({});
  if (!defaults.success) {
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

/**
 * A registry of checks whose metadata is known ahead (the build's catalog of the built-in
 * checks, written from the validated registry) and whose code is loaded when first used: a
 * check's `meta` is the given one; its messages, options, run, part and preload load it, once.
 * Listing, planning and reporting read only metadata, so a run of one check loads that check.
 */
export function lazyRegistry(metas: readonly CheckMeta[], load: (id: string) => AnyCheck): Registry {
  const map = new Map<string, AnyCheck>();
  for (const meta of [...metas].sort((a, b) => a.id.localeCompare(b.id))) {
    let loaded: AnyCheck | undefined;
    const real = (): AnyCheck => {
      if (loaded) return loaded;
      const c = load(meta.id);
      if (c?.meta?.id !== meta.id) throw new AuditError(ErrorCodes.PLUGIN, `the check catalog names ${meta.id}, whose module holds ${String(c?.meta?.id)}: rebuild (npm run build)`);
      return (loaded = c);
    };
    const check: AnyCheck = Object.freeze({
      meta,
      get messages() {
        return real().messages;
      },
      get options() {
        return real().options;
      },
      run(ctx: Parameters<AnyCheck['run']>[0]) {
        return real().run(ctx);
      },
      get part() {
        const c = real();
        return c.part?.bind(c);
      },
      get preload() {
        const c = real();
        return c.preload?.bind(c);
      },
    });
    map.set(meta.id, check);
  }
  return Object.freeze(map) as Registry;
}

/**
 * The built-in registry plus external checks (plugins), each validated as a built-in is; an id
 * that is already taken is an error naming both places.
 */
export function extendRegistry(base: Registry, external: readonly { check: AnyCheck; where: string }[]): Registry {
  const map = new Map<string, AnyCheck>(base);
  const from = new Map<string, string>();
  for (const { check, where } of external) {
    validateCheck(check, where, { external: true });
    const id = check.meta.id;
    const unknownItems = check.meta.checklist.filter((i) => !CHECKLIST_IDS.has(i));
    if (unknownItems.length > 0) {
      throw new AuditError(ErrorCodes.PLUGIN, `${where}: check ${id}: unknown checklist item ${unknownItems.join(', ')} (known: ${[...CHECKLIST_IDS].join(', ')})`);
    }
    if (map.has(id)) {
      throw new AuditError(ErrorCodes.PLUGIN, `${where}: check id ${id} is already defined${from.has(id) ? ` by ${from.get(id)}` : ' by a built-in check'}`);
    }
    map.set(id, check);
    from.set(id, where);
  }
  const sorted = new Map([...map].sort(([a], [b]) => a.localeCompare(b)));
  return Object.freeze(sorted) as Registry;
}
