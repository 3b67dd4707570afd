/**
 * Loading audit.yaml: parse, interpolate `${VAR}` from the environment, validate, resolve
 * relative paths against the config file's folder. Every error names the file, the line,
 * the path inside the file and what was expected.
 *
 * A fleet config (`deployments:` / `include:`, see fleet.ts) is validated deployment by
 * deployment with the same functions: each deployment's settings may come from more than one
 * place (its own entry or file, and the shared `defaults:`), and an error names the place the
 * offending value was written.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { fmtPath, issueText, yamlValue, type PathKey } from './yaml-errors';
import { readSmallFile, readSmallFileSync } from './files';
import { configSchema, type AuditConfig } from './schema';
import { resolveConfigPaths } from './paths';
import { loadPlugins } from './plugins';
import { AuditError, ErrorCodes } from '../core/errors';
import { optionKeys, type Registry } from '../core/registry';

export interface LoadedConfig {
  config: AuditConfig;
  /** Absolute path of the file (of a fleet's deployment: the file it is defined in). */
  file: string;
  /** sha256 of the file's bytes (of a fleet's deployment: of the files it is made from), shown in reports so a reader knows which config produced them. */
  digest: string;
  /** Per-check options, validated against each check's schema (defaults applied). */
  checkOptions: Map<string, unknown>;
  /** The registry given to the loader plus the checks of `plugins:` (empty when none was given). */
  registry: Registry;
}

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** A string of the file that took text from the environment: what the file says, and what came in. */
export interface Interpolated {
  template: string;
  value: string;
  /** Variable name → the text it gave. */
  vars: Map<string, string>;
}

export interface Interpolation {
  errors: { path: PathKey[]; msg: string }[];
  /** By JSON of the path. */
  strings: Map<string, Interpolated>;
}

/** Replaces `${VAR}` and `${VAR:-default}` in every string scalar; a missing variable, or any other `${…}` form, is an error. */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: PathKey[], into: Interpolation): unknown {
  if (typeof value === 'string') {
    // Any other `${…}` (`${VAR-x}`, `${ VAR }`) would otherwise pass through as literal text.
    const odd = /\$\{[^}]*\}?/.exec(value.replace(ENV_RE, ''));
    if (odd) into.errors.push({ path, msg: `unsupported reference "${odd[0]}" (use \${VAR} or \${VAR:-default})` });
    const vars = new Map<string, string>();
    const out = value.replace(ENV_RE, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') {
        vars.set(name, v);
        return v;
      }
      if (def !== undefined) return def;
      into.errors.push({ path, msg: `environment variable ${name} is not set` });
      return '';
    });
    if (vars.size > 0) into.strings.set(JSON.stringify(path), { template: value, value: out, vars });
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], into));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...path, k], into);
    return out;
  }
  return value;
}

/**
 * An issue's words for a value that came (in part) from the environment: the value is never
 * shown — messages that quote it show the file's `${VAR}` text instead — and the variable is
 * named. Values may be secrets (a duration is not, but `${DATABASE_URL}` is).
 */
function issueTextWithout(issue: z.core.$ZodIssue, from: Interpolated | undefined): string {
  const text = issueText(issue);
  if (!from) return text;
  let shown = from.value.length > 0 ? text.split(from.value).join(from.template) : text;
  for (const [name, v] of from.vars) if (v.length >= 4) shown = shown.split(v).join(`\${${name}}`);
  const names = [...from.vars.keys()].map((n) => `\${${n}}`);
  return names.every((n) => shown.includes(n)) ? shown : `${shown} (the value comes from ${names.join(', ')} and is not shown)`;
}

/** A YAML document of a config file, with its value (refused as the loader refuses: bad YAML, alias bombs). */
export interface ConfigDoc {
  file: string;
  doc: Document;
  lc: LineCounter;
  value: unknown;
}

export function parseConfigDoc(text: string, file: string): ConfigDoc {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const { line, col } = lc.linePos(e.pos[0]);
    throw new AuditError(ErrorCodes.CONFIG, `${file}:${line}:${col}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const js = yamlValue(doc, lc, file);
  if ('problem' in js) throw new AuditError(ErrorCodes.CONFIG, js.problem);
  return { file, doc, lc, value: js.value };
}

/**
 * Where (part of) a config's settings were written: a document, the path in it the settings
 * start at (`[]` for a whole file, `['deployments', 3]` for an entry of a fleet's list), and
 * the `${VAR}` strings interpolated in it (keyed by the JSON of their path in the document).
 */
export interface ConfigOrigin {
  file: string;
  doc: Document;
  lc: LineCounter;
  prefix: PathKey[];
  strings: Map<string, Interpolated>;
}

/** How deep `path` (under the origin's prefix) exists in its document, and the node's place there. */
function deepest(o: ConfigOrigin, path: readonly PathKey[]): { depth: number; at: string } {
  for (let n = path.length; n >= 0; n--) {
    const node = o.doc.getIn([...o.prefix, ...path.slice(0, n)], true) as { range?: [number, number, number] } | undefined;
    if (node && node.range) {
      const { line, col } = o.lc.linePos(node.range[0]);
      return { depth: n, at: `${line}:${col}` };
    }
  }
  return { depth: -1, at: '1:1' };
}

/**
 * `file:line:col` of a path of the settings: in the origin that holds most of it (the first
 * origin, the deployment's own, wins a tie), else at the nearest parent that exists.
 */
export function locateIn(origins: readonly ConfigOrigin[], path: readonly PathKey[]): string {
  let best = { depth: -2, at: '1:1', file: origins[0].file };
  for (const o of origins) {
    const d = deepest(o, path);
    if (d.depth > best.depth) best = { ...d, file: o.file };
  }
  return `${best.file}:${best.at}`;
}

function stringAt(origins: readonly ConfigOrigin[], path: readonly PathKey[]): Interpolated | undefined {
  for (const o of origins) {
    const s = o.strings.get(JSON.stringify([...o.prefix, ...path]));
    if (s) return s;
  }
  return undefined;
}

/**
 * Each check's options by id: those set in the config, validated above; any other check's
 * defaults, parsed when first asked for — so that a run of one check loads no other check's
 * code (the registry may load checks on first use: lazyRegistry).
 */
class CheckOptions extends Map<string, unknown> {
  constructor(private readonly registry: Registry) {
    super();
  }

  override get(id: string): unknown {
    if (!super.has(id)) {
      const check = this.registry.get(id);
      if (check) super.set(id, check.options.parse({}));
    }
    return super.get(id);
  }

  override has(id: string): boolean {
    return this.get(id) !== undefined;
  }
}

/** The schema's and the checks' verdict on one deployment's (interpolated, merged) settings; problems are appended. */
export function validateSettings(
  raw: unknown,
  origins: readonly ConfigOrigin[],
  problems: string[],
  /** Relative paths left in the settings (the schema's defaults too) are resolved against this folder. */
  baseDir: string,
  registryOf: (config: AuditConfig) => Registry | undefined,
): { config: AuditConfig; checkOptions: Map<string, unknown>; registry?: Registry } | undefined {
  const before = problems.length;
  const where = (path: readonly PathKey[]) => `${locateIn(origins, path)}: ${fmtPath(path)}`;
  const words = (issue: z.core.$ZodIssue, path: readonly PathKey[]) => issueTextWithout(issue, stringAt(origins, path));
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is PathKey => typeof p !== 'symbol');
      // An unknown key is best located at the key itself, not at its parent mapping.
      const at = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]] : path;
      problems.push(`${locateIn(origins, at)}: ${fmtPath(path)}: ${words(issue, path)}`);
    }
    return undefined;
  }
  const config = parsed.data;
  resolveConfigPaths(config, baseDir);
  const registry = registryOf(config);
  const checkOptions = new CheckOptions(registry ?? new Map());
  if (registry) {
    for (const [id, settings] of Object.entries(config.checks)) {
      const check = registry.get(id);
      if (!check) {
        const known = [...registry.keys()].join(', ');
        problems.push(`${where(['checks', id])}: unknown check id (known: ${known})`);
        continue;
      }
      // A misspelt option would otherwise be dropped silently and the default policy applied.
      const keys = optionKeys(check) ?? [];
      const unknown = Object.keys(settings.options).filter((k) => !keys.includes(k));
      for (const k of unknown) problems.push(`${where(['checks', id, 'options', k])}: unknown option "${k}" of check ${id} (known: ${keys.join(', ') || 'none'})`);
      if (unknown.length > 0) continue;
      const o = check.options.safeParse(settings.options, { reportInput: true });
      if (!o.success) {
        for (const issue of o.error.issues) {
          const path = ['checks', id, 'options', ...issue.path.filter((p): p is PathKey => typeof p !== 'symbol')];
          problems.push(`${where(path)}: ${words(issue, path)}`);
        }
      } else checkOptions.set(id, o.data);
    }
  }
  return problems.length > before ? undefined : { config, checkOptions, registry };
}

export function configProblems(problems: readonly string[]): AuditError {
  return new AuditError(ErrorCodes.CONFIG, `invalid configuration:\n  ${problems.join('\n  ')}`);
}

export function digestOf(...texts: string[]): string {
  const h = createHash('sha256');
  texts.forEach((t, i) => {
    if (i > 0) h.update('\0');
    h.update(t, 'utf8');
  });
  return 'sha256:' + h.digest('hex');
}

/** Parses and validates config text of one deployment; `file` is used for messages and relative paths. */
export function parseConfig(text: string, file: string, opts: { env?: NodeJS.ProcessEnv; registry?: Registry } = {}): LoadedConfig {
  const parsed = parseConfigDoc(text, file);
  const raw = parsed.value;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new AuditError(ErrorCodes.CONFIG, `${file}:1:1: expected a mapping at the top level (deployment:, sources:, ...)`);
  }
  const env: Interpolation = { errors: [], strings: new Map() };
  const interpolated = interpolate(raw, opts.env ?? process.env, [], env);
  const origins: ConfigOrigin[] = [{ file, doc: parsed.doc, lc: parsed.lc, prefix: [], strings: env.strings }];
  const problems: string[] = env.errors.map((e) => `${locateIn(origins, e.path)}: ${fmtPath(e.path)}: ${e.msg}`);
  const out = validateSettings(interpolated, origins, problems, dirname(resolve(file)), (config) =>
    // Plugins are loaded (and validated) here, so `checks:` may configure their checks too.
    opts.registry ? loadPlugins(config.plugins, opts.registry, (i) => `${locateIn(origins, ['plugins', i])}: plugins[${i}]`) : undefined,
  );
  if (problems.length > 0 || !out) throw configProblems(problems);
  return {
    config: out.config,
    file: resolve(file),
    digest: digestOf(text),
    checkOptions: out.checkOptions,
    registry: out.registry ?? new Map(),
  };
}

/** Reads (a regular file of at most 1 MiB, see files.ts) and parses a config file. */
export function loadConfig(file: string, opts: { env?: NodeJS.ProcessEnv; registry?: Registry } = {}): LoadedConfig {
  return parseConfig(readSmallFileSync(file, { noun: 'config file' }), file, opts);
}

/** As {@link loadConfig}, with the read under a deadline: what the commands and a daemon's reload use. */
export async function loadConfigFile(file: string, opts: { env?: NodeJS.ProcessEnv; registry?: Registry } = {}): Promise<LoadedConfig> {
  return parseConfig(await readSmallFile(file, { noun: 'config file' }), file, opts);
}
