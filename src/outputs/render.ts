/**
 * The handlebars environment of the HTML outputs: a dedicated `Handlebars.create()` (so no
 * other code's helpers or partials leak in), partials from `templates/partials/`, templates
 * compiled once. Templates only ever use `{{ }}`, which escapes: data never reaches the page
 * as markup (a test fails on any triple-stash in templates/).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import type HandlebarsModule from 'handlebars';
import { precompiledFor } from './template-cache';

/** `templates/` of the package, found by walking up from this file (works from src/ and dist/src/). */
export const TEMPLATES_DIR: string = (() => {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'templates', 'report.hbs'))) return join(dir, 'templates');
    dir = dirname(dir);
  }
  return join(__dirname, '..', '..', 'templates');
})();

/** The package's root folder (where `docs/` and `templates/` are), from src/ and dist/src/ alike. */
export const PACKAGE_ROOT: string = dirname(TEMPLATES_DIR);

type Env = ReturnType<typeof HandlebarsModule.create>;
type Template = (context: unknown) => string;
type Spec = Parameters<Env['template']>[0];

/**
 * The environment of `dir`'s templates: handlebars' runtime alone with the build's precompiled
 * templates when they are of exactly these files (template-cache.ts), else the whole library,
 * compiling from disk.
 */
function createEnv(dir: string): { hb: Env; precompiled?: Record<string, Spec> } {
  const pre = precompiledFor(dir);
  /* eslint-disable @typescript-eslint/no-require-imports */
  const hb = pre ? (require('handlebars/runtime') as { default: typeof HandlebarsModule }).default.create() : (require('handlebars') as typeof HandlebarsModule).create();
  /* eslint-enable @typescript-eslint/no-require-imports */
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('gt', (a: unknown, b: unknown) => typeof a === 'number' && typeof b === 'number' && a > b);
  hb.registerHelper('plural', (n: unknown, one: unknown, many: unknown) => (n === 1 ? one : many));
  if (pre) {
    for (const [name, spec] of Object.entries(pre.partials)) hb.registerPartial(name, hb.template(spec as Spec));
    return { hb, precompiled: pre.templates as Record<string, Spec> };
  }
  const partials = join(dir, 'partials');
  if (existsSync(partials)) {
    for (const f of readdirSync(partials).sort()) {
      if (f.endsWith('.hbs')) hb.registerPartial(basename(f, '.hbs'), readFileSync(join(partials, f), 'utf8'));
    }
  }
  return { hb };
}

const cache = new Map<string, Template>();
let env: { dir: string; hb: Env; precompiled?: Record<string, Spec> } | undefined;

/** The compiled template `templates/<name>.hbs`. */
export function template(name: string, dir: string = TEMPLATES_DIR): Template {
  const key = `${dir}\0${name}`;
  let t = cache.get(key);
  if (!t) {
    if (!env || env.dir !== dir) env = { dir, ...createEnv(dir) };
    const spec = env.precompiled?.[name];
    const compiled = spec ? env.hb.template(spec) : env.hb.compile(readFileSync(join(dir, `${name}.hbs`), 'utf8'), { noEscape: false });
    t = (ctx: unknown) => compiled(ctx);
    cache.set(key, t);
  }
  return t;
}

/** `2026-11-22T10:00:00.000Z` → `2026-11-22 10:00:00 UTC`; anything unparseable is shown as given. */
export function fmtTime(iso: string | undefined): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

/** A link target only when it is an absolute http(s) URL: data never becomes a `javascript:` link. */
export function safeHref(path: string | undefined, base?: string): string | undefined {
  if (!path) return undefined;
  try {
    const u = base ? new URL(path, base) : new URL(path);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** A CSS-class-safe token (statuses like "NOT EVALUATED" become `not-evaluated`). */
export function cls(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

export interface RunbookLinkOptions {
  /** An http(s) base that repository paths are resolved against (`outputs.runbook_base_url`). */
  baseUrl?: string;
  /** The folder the page is written to: runbooks shipped on this machine are linked relative to it. */
  reportDir?: string;
}

/** The file of a check's runbook on this machine (built-in ones ship in the package), if it is there. */
export function runbookFile(runbook: string | undefined): string | undefined {
  if (!runbook || /^https?:\/\//i.test(runbook)) return undefined;
  const file = isAbsolute(runbook) ? runbook : join(PACKAGE_ROOT, runbook);
  return existsSync(file) ? file : undefined;
}

/**
 * The runbooks the daemon serves beside /report, by file name, so the report's relative
 * runbook links work over HTTP too: a relative link resolved against `/report` ends in the
 * runbook's file name, and only files named by the checks' metadata are ever served.
 */
export function runbookFiles(runbooks: Iterable<string | undefined>): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of runbooks) {
    const file = runbookFile(r);
    if (file && !out.has(basename(file))) out.set(basename(file), file);
  }
  return out;
}

/**
 * A link to a check's runbook that works from the written page: through the configured base
 * URL, else as a path relative to the page's folder when the runbook file is on this machine
 * (built-in runbooks ship in the package; a plugin's sits beside it). Runbook paths come from
 * check metadata, never from the audited deployment; only http(s) URLs and relative paths of
 * plain characters become links.
 */
export function runbookHref(runbook: string | undefined, opts: RunbookLinkOptions = {}): string | undefined {
  if (!runbook) return undefined;
  if (/^https?:\/\//i.test(runbook)) return safeHref(runbook);
  if (opts.baseUrl && !isAbsolute(runbook)) {
    const linked = safeHref(runbook, opts.baseUrl);
    if (linked) return linked;
  }
  if (!opts.reportDir) return undefined;
  const file = runbookFile(runbook);
  if (!file) return undefined;
  const rel = relative(opts.reportDir, file).split(sep).map(encodeURIComponent).join('/');
  return /^[A-Za-z0-9._~%/-]+$/.test(rel) ? rel : undefined;
}
