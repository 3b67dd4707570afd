/**
 * External checks: `plugins:` in audit.yaml lists folders (every `*.js` / `*.cjs` file directly
 * in one is a check module; helpers go in a subfolder) and module files. A module exports one
 * check (`module.exports = defineCheck({...})`, or `exports.default`) or several (an array, or
 * `exports.checks`). Each is validated as a built-in is — metadata, messages, options with
 * defaults, a unique id — before any check runs, so a broken plugin stops the process at
 * start (exit 2) rather than on the first cron tick.
 *
 * Modules are CommonJS, compiled here with their own `require`, which answers
 * `aegis-audit/plugin` with this build's contract (defineCheck, zod, resource, errors) so a
 * plugin needs no node_modules; relative requires inside the plugin get the same `require`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { compileFunction } from 'node:vm';
import * as pluginApi from '../plugin';
import type { AnyCheck } from '../core/define-check';
import { AuditError, ErrorCodes } from '../core/errors';
import { extendRegistry, type Registry } from '../core/registry';

export const PLUGIN_API_IDS: readonly string[] = ['aegis-audit/plugin', 'aegis-audit'];
const MODULE_EXT = new Set(['.js', '.cjs']);

function pluginError(where: string, message: string): AuditError {
  return new AuditError(ErrorCodes.PLUGIN, `${where}: ${message}`);
}

/** Loads one CommonJS module file with a require that provides the plugin contract. */
function loadModule(file: string, cache: Map<string, { exports: unknown }>): unknown {
  const cached = cache.get(file);
  if (cached) return cached.exports;
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (e) {
    throw pluginError(file, `cannot read plugin module (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const mod = { exports: {} as unknown };
  cache.set(file, mod);
  const nodeRequire = createRequire(file);
  const req = (id: string): unknown => {
    if (PLUGIN_API_IDS.includes(id)) return pluginApi;
    if (id.startsWith('./') || id.startsWith('../')) {
      let target = resolve(dirname(file), id);
      try {
        target = nodeRequire.resolve(target);
      } catch {
        // let node's own error name what is missing
        return nodeRequire(id);
      }
      if (MODULE_EXT.has(extname(target))) return loadModule(target, cache);
    }
    return nodeRequire(id);
  };
  let fn: (...args: unknown[]) => unknown;
  try {
    fn = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file }) as (...args: unknown[]) => unknown;
  } catch (e) {
    const hint = /import|export/.test(String((e as Error).message)) ? ' (plugins are CommonJS: use require() and module.exports)' : '';
    throw pluginError(file, `cannot load plugin module: ${(e as Error).message}${hint}`);
  }
  try {
    fn(mod.exports, req, mod, file, dirname(file));
  } catch (e) {
    if (e instanceof AuditError) throw e;
    throw pluginError(file, `plugin module threw while loading: ${(e as Error)?.message ?? String(e)}`);
  }
  return mod.exports;
}

/** The checks a module exports, in the forms the contract allows. */
function checksOf(exported: unknown, file: string): AnyCheck[] {
  let v = exported as { default?: unknown; checks?: unknown } | unknown[] | null | undefined;
  if (v && typeof v === 'object' && !Array.isArray(v) && 'checks' in v && Array.isArray(v.checks)) return v.checks as AnyCheck[];
  if (v && typeof v === 'object' && !Array.isArray(v) && 'default' in v) v = v.default as typeof v;
  if (Array.isArray(v)) return v as AnyCheck[];
  if (v && typeof v === 'object' && 'meta' in v) return [v as unknown as AnyCheck];
  throw pluginError(file, 'exports no check: use module.exports = defineCheck({ meta, messages, options, run }) (or an array of checks, or exports.checks)');
}

/** A plugin's runbook path is relative to its module; made absolute so reports and `explain` can find it. */
function withRunbookResolved(check: AnyCheck, file: string): AnyCheck {
  const rb = check.meta?.runbook;
  if (typeof rb !== 'string' || /^https?:\/\//.test(rb) || isAbsolute(rb)) return check;
  return Object.freeze({ ...check, meta: Object.freeze({ ...check.meta, runbook: resolve(dirname(file), rb) }) });
}

/** The module files a `plugins:` entry names: a folder's `*.js`/`*.cjs` files, or the file itself. */
export function pluginFiles(entry: string, where: string): string[] {
  let st;
  try {
    st = statSync(entry);
  } catch (e) {
    throw new AuditError(ErrorCodes.CONFIG, `${where}: plugin path ${entry} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (st.isFile()) return [entry];
  const files = readdirSync(entry, { withFileTypes: true })
    .filter((d) => d.isFile() && MODULE_EXT.has(extname(d.name)))
    .map((d) => join(entry, d.name))
    .sort();
  if (files.length === 0) throw new AuditError(ErrorCodes.CONFIG, `${where}: plugin folder ${entry} holds no .js or .cjs module`);
  return files;
}

/**
 * The registry extended with the checks of every plugin entry (absolute paths). `where(i)`
 * names entry i for errors (file:line of the config).
 */
export function loadPlugins(entries: readonly string[], base: Registry, where: (i: number) => string = (i) => `plugins[${i}]`): Registry {
  if (entries.length === 0) return base;
  const cache = new Map<string, { exports: unknown }>();
  const external: { check: AnyCheck; where: string }[] = [];
  entries.forEach((entry, i) => {
    for (const file of pluginFiles(entry, where(i))) {
      checksOf(loadModule(file, cache), file).forEach((check, n, all) => {
        external.push({ check: withRunbookResolved(check, file), where: all.length > 1 ? `${file} (check ${n + 1})` : file });
      });
    }
  });
  return extendRegistry(base, external);
}
