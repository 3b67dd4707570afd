/**
 * A fleet: many deployments in one config. Today's format (a top-level `deployment:`) is a
 * fleet of one and loads exactly as before. A fleet config instead lists deployments
 * (`deployments:`, each an object with its own `deployment` name, sources, checks, waivers and
 * attestations) and/or includes per-deployment files (`include:` globs, relative to the config
 * file), and may give `defaults:` shared by all of them.
 *
 * Merge rule: a deployment's settings are laid over `defaults:` — maps merge key by key, at any
 * depth; anything else (a list, a string, a number) in the deployment replaces the default
 * whole. Relative paths are relative to the file they are written in (a default's to the fleet
 * config, an included deployment's to its own file).
 *
 * What belongs to the process, not to a deployment, is written once at the top: `server`,
 * `leader_lock`, `plugins` and `fleet` (how many checks run at once across the fleet).
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { z } from 'zod';
import { readSmallFile } from './files';
import {
  configProblems,
  digestOf,
  interpolate,
  locateIn,
  parseConfig,
  parseConfigDoc,
  validateSettings,
  type ConfigDoc,
  type ConfigOrigin,
  type Interpolation,
  type LoadedConfig,
} from './load';
import { resolveConfigPaths } from './paths';
import { loadPlugins } from './plugins';
import { configSchema, type AuditConfig } from './schema';
import { fmtPath, issueText, type PathKey } from './yaml-errors';
import { AuditError, ErrorCodes } from '../core/errors';
import type { Registry } from '../core/registry';

/** At most this many deployments in one config (inline and included together). */
export const MAX_DEPLOYMENTS = 10_000;
/** At most this many `include:` patterns. */
export const MAX_INCLUDE_PATTERNS = 100;
/** Everything a fleet config reads, its included files together, at most this many bytes. */
export const MAX_FLEET_BYTES = 64 * 1024 * 1024;
/** Deployment names that would collide with the fleet's own files in the outputs folder. */
export const RESERVED_DEPLOYMENT_NAMES: readonly string[] = ['history', 'index.html', 'index.json'];
/** Keys written once for the whole process, never per deployment. */
const PROCESS_KEYS = ['server', 'leader_lock', 'queue', 'plugins', 'fleet'] as const;

const shape = configSchema.shape;

export const fleetSettingsSchema = z
  .object({
    concurrency: z.number().int().min(1).max(256).default(4).describe('Checks running at once across every deployment of the fleet (`run` and the daemon).'),
    max_per_deployment: z
      .number()
      .int()
      .min(1)
      .max(256)
      .optional()
      .describe('Of those, at most this many for one deployment, so a slow or hung deployment never holds them all; default half of `fleet.concurrency`, rounded up (all of them for a fleet of one).'),
  })
  .strict();

const fleetTopSchema = z
  .object({
    defaults: z.record(z.string(), z.unknown()).optional(),
    deployments: z.array(z.record(z.string(), z.unknown())).optional(),
    include: z.array(z.string().min(1).max(4096)).max(MAX_INCLUDE_PATTERNS, `at most ${MAX_INCLUDE_PATTERNS} patterns`).optional(),
    fleet: fleetSettingsSchema.prefault({}),
    server: shape.server,
    leader_lock: shape.leader_lock,
    queue: shape.queue,
    plugins: shape.plugins,
  })
  .strict();

export interface FleetSettings {
  concurrency: number;
  maxPerDeployment: number;
  server: AuditConfig['server'];
  leaderLock: AuditConfig['leader_lock'];
  /** Replicas sharing the checks of every deployment through a job queue. */
  queue: AuditConfig['queue'];
  /** Where the fleet's index page is written: the outputs folder of `defaults:` (of the one deployment, for today's format). */
  outputsDir: string;
}

export interface LoadedFleet {
  /** Absolute path of the config file. */
  file: string;
  digest: string;
  /** Today's format (a top-level `deployment:`): reports, history and the daemon's pages stay as they were. */
  single: boolean;
  /** In config order: the `deployments:` list, then included files in path order. */
  deployments: LoadedConfig[];
  /** The built-in checks plus `plugins:` (empty when the loader was given no registry). */
  registry: Registry;
  settings: FleetSettings;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The merge rule: maps merge key by key at any depth; any other value of `over` replaces `base`'s. */
export function mergeDefaults(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over)) return over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeDefaults(base[k], v) : v;
  return out;
}

/** Whether a config file is a fleet (`deployments:` or `include:` at its top level). */
export function isFleetConfig(value: unknown): boolean {
  return isObj(value) && ('deployments' in value || 'include' in value);
}

interface Piece {
  origin: ConfigOrigin;
  raw: Obj;
  /** `file:line:col` of the piece (for duplicate names). */
  at: string;
  digest: string;
}

/** The fleet's per-check bound from its settings: a deployment may use at most this many of the fleet's slots. */
function perDeployment(concurrency: number, max: number | undefined, deployments: number): number {
  if (max !== undefined) return Math.min(max, concurrency);
  return deployments <= 1 ? concurrency : Math.max(1, Math.ceil(concurrency / 2));
}

/** A fleet of one from today's format (or from one loaded deployment, as tests and the demo hand the daemon). */
export function fleetOfOne(loaded: LoadedConfig, registry: Registry = loaded.registry): LoadedFleet {
  const c = loaded.config;
  return {
    file: loaded.file,
    digest: loaded.digest,
    single: true,
    deployments: [loaded],
    registry,
    settings: {
      concurrency: c.run.concurrency,
      maxPerDeployment: c.run.concurrency,
      server: c.server,
      leaderLock: c.leader_lock,
      queue: c.queue,
      outputsDir: c.outputs.dir,
    },
  };
}

export interface FleetLoadOptions {
  env?: NodeJS.ProcessEnv;
  registry?: Registry;
  /** Reads an included file (default: a regular file of at most 1 MiB, within a deadline). */
  readFile?: (file: string) => Promise<string>;
}

/** Parses and validates a config file's text: today's format (a fleet of one) or a fleet. */
export async function parseFleet(text: string, file: string, opts: FleetLoadOptions = {}): Promise<LoadedFleet> {
  const main = parseConfigDoc(text, file);
  if (!isFleetConfig(main.value)) return fleetOfOne(parseConfig(text, file, opts));
  const top = main.value as Obj;
  const mainDir = dirname(resolve(file));
  const env = opts.env ?? process.env;
  let problems: string[] = [];
  const mainInterp: Interpolation = { errors: [], strings: new Map() };
  const interpolated = interpolate(top, env, [], mainInterp) as Obj;
  const mainOrigin = (prefix: PathKey[]): ConfigOrigin => ({ file, doc: main.doc, lc: main.lc, prefix, strings: mainInterp.strings });
  const at = (doc: ConfigDoc, path: PathKey[]) => locateIn([{ file: doc.file, doc: doc.doc, lc: doc.lc, prefix: [], strings: new Map() }], path);
  for (const e of mainInterp.errors) problems.push(`${at(main, e.path)}: ${fmtPath(e.path)}: ${e.msg}`);

  if ('deployment' in top) {
    throw configProblems([`${at(main, ['deployment'])}: deployment: a fleet config names its deployments in deployments: or included files, not at the top level (move the top-level settings into a deployment, or shared ones into defaults:)`]);
  }
  const parsedTop = fleetTopSchema.safeParse(interpolated, { reportInput: true });
  if (!parsedTop.success) {
    for (const issue of parsedTop.error.issues) {
      const path = issue.path.filter((p): p is PathKey => typeof p !== 'symbol');
      const where = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]] : path;
      const hint = issue.code === 'unrecognized_keys' && path.length === 0 ? ' (a fleet config has defaults, deployments, include, fleet, server, leader_lock, queue and plugins at its top level; settings of deployments go in defaults: or in each deployment)' : '';
      problems.push(`${at(main, where)}: ${fmtPath(path)}: ${issueText(issue)}${hint}`);
    }
    throw configProblems(problems);
  }
  const fleet = parsedTop.data;
  // Plugins first: every deployment's checks: may configure their checks.
  const pluginDirs = fleet.plugins.map((p) => (isAbsolute(p) ? p : resolve(mainDir, p)));
  const registry = opts.registry ? loadPlugins(pluginDirs, opts.registry, (i) => `${at(main, ['plugins', i])}: plugins[${i}]`) : undefined;

  // The shared defaults, with their relative paths made absolute against the fleet config.
  const defaults = (interpolated.defaults ?? {}) as Obj;
  for (const key of ['deployment', ...PROCESS_KEYS]) {
    if (key in defaults) problems.push(`${at(main, ['defaults', key])}: defaults.${key}: ${key === 'deployment' ? 'each deployment names itself (deployment: in its entry or file)' : `${key} is set once for the whole fleet, at the top level of the config`}`);
  }
  resolveConfigPaths(defaults, mainDir);

  const pieces: Piece[] = [];
  (fleet.deployments ?? []).forEach((_d, i) => {
    const raw = (interpolated.deployments as Obj[])[i];
    resolveConfigPaths(raw, mainDir);
    pieces.push({ origin: mainOrigin(['deployments', i]), raw, at: at(main, ['deployments', i]), digest: digestOf(text) });
  });

  // Included files: each holds one deployment, its paths relative to itself.
  let bytes = Buffer.byteLength(text);
  const read = opts.readFile ?? ((f: string) => readSmallFile(f, { noun: 'included deployment file' }));
  const seen = new Set<string>([resolve(file)]);
  for (const [i, pattern] of (fleet.include ?? []).entries()) {
    const where = `${at(main, ['include', i])}: include[${i}]`;
    let files: string[];
    try {
      files = isDynamicPattern(pattern)
        ? globSync(pattern, { cwd: mainDir, absolute: true, onlyFiles: true, followSymbolicLinks: true }).sort()
        : [resolve(mainDir, pattern)];
    } catch (e) {
      problems.push(`${where}: "${pattern}" is not a usable pattern (${e instanceof Error ? e.message.split('\n')[0] : 'error'})`);
      continue;
    }
    if (files.length === 0) {
      problems.push(`${where}: "${pattern}" matches no file (relative to ${mainDir})`);
      continue;
    }
    for (const f of files) {
      if (seen.has(f)) continue;
      seen.add(f);
      if (pieces.length >= MAX_DEPLOYMENTS) throw configProblems([...problems, `${where}: more than ${MAX_DEPLOYMENTS} deployments in one config`]);
      let ftext: string;
      try {
        ftext = await read(f);
      } catch (e) {
        problems.push(`${where}: ${e instanceof AuditError ? e.message : `${f}: cannot read the file`}`);
        continue;
      }
      bytes += Buffer.byteLength(ftext);
      if (bytes > MAX_FLEET_BYTES) throw configProblems([...problems, `${where}: the config and its included files are larger than ${MAX_FLEET_BYTES / (1024 * 1024)} MiB together`]);
      let doc: ConfigDoc;
      try {
        doc = parseConfigDoc(ftext, f);
      } catch (e) {
        if (e instanceof AuditError) {
          problems.push(e.message);
          continue;
        }
        throw e;
      }
      if (!isObj(doc.value)) {
        problems.push(`${f}:1:1: an included file holds one deployment: a mapping with deployment:, sources:, ... (included by ${where})`);
        continue;
      }
      const nested = ['deployments', 'include', 'defaults'].find((k) => k in (doc.value as Obj));
      if (nested) {
        problems.push(`${at(doc, [nested])}: ${nested}: an included file holds one deployment; ${nested}: belongs in the fleet config ${file}`);
        continue;
      }
      const interp: Interpolation = { errors: [], strings: new Map() };
      const raw = interpolate(doc.value, env, [], interp) as Obj;
      for (const e of interp.errors) problems.push(`${at(doc, e.path)}: ${fmtPath(e.path)}: ${e.msg}`);
      resolveConfigPaths(raw, dirname(f));
      pieces.push({ origin: { file: f, doc: doc.doc, lc: doc.lc, prefix: [], strings: interp.strings }, raw, at: `${f}:1:1`, digest: digestOf(text, ftext) });
    }
  }
  if (pieces.length > MAX_DEPLOYMENTS) problems.push(`${at(main, ['deployments'])}: deployments: more than ${MAX_DEPLOYMENTS} deployments in one config`);
  if (pieces.length === 0 && problems.length === 0) problems.push(`${file}:1:1: the fleet has no deployment (deployments: is empty and include: matched none)`);

  const deployments: LoadedConfig[] = [];
  const byName = new Map<string, string>();
  const defaultsOrigin = mainOrigin(['defaults']);
  for (const p of pieces) {
    const place = (key: PathKey[]) => locateIn([p.origin], key);
    for (const key of PROCESS_KEYS) {
      if (key in p.raw) problems.push(`${place([key])}: ${key}: ${key} is set once for the whole fleet, at the top level of ${file}`);
    }
    const name = p.raw.deployment;
    if (typeof name === 'string') {
      const first = byName.get(name);
      if (first) problems.push(`${place(['deployment'])}: deployment: "${name.slice(0, 100)}" is defined twice (first at ${first}); deployment names must be unique in a fleet`);
      else byName.set(name, place(['deployment']));
      if (RESERVED_DEPLOYMENT_NAMES.includes(name)) problems.push(`${place(['deployment'])}: deployment: "${name}" is reserved in a fleet (the outputs folder holds the fleet's ${name})`);
    } else if (name === undefined) problems.push(`${p.at}: deployment: each deployment needs a name (deployment: <name>)`);
    const merged = mergeDefaults(defaults, p.raw);
    const out = validateSettings(merged, [p.origin, defaultsOrigin], problems, mainDir, () => registry);
    if (out) deployments.push({ config: out.config, file: p.origin.file, digest: p.digest, checkOptions: out.checkOptions, registry: registry ?? new Map() });
  }
  if (problems.length > 0) {
    // A bad default is said once, not once for each deployment it reaches.
    problems = [...new Set(problems)];
    const shown = problems.length > 50 ? [...problems.slice(0, 50), `... and ${problems.length - 50} more`] : problems;
    throw configProblems(shown);
  }
  // Where the index goes: the default outputs folder (the schema's default resolved beside the config).
  const outputsDefault = (defaults.outputs as Obj | undefined)?.dir;
  const outputsDir = typeof outputsDefault === 'string' ? outputsDefault : resolve(mainDir, shape.outputs.parse({}).dir);
  return {
    file: resolve(file),
    digest: digestOf(text),
    single: false,
    deployments,
    registry: registry ?? new Map(),
    settings: {
      concurrency: fleet.fleet.concurrency,
      maxPerDeployment: perDeployment(fleet.fleet.concurrency, fleet.fleet.max_per_deployment, deployments.length),
      server: fleet.server,
      leaderLock: fleet.leader_lock,
      queue: fleet.queue,
      outputsDir,
    },
  };
}

/** Reads (regular files of at most 1 MiB each, within a deadline) and parses a config file and the files it includes. */
export async function loadFleetFile(file: string, opts: FleetLoadOptions = {}): Promise<LoadedFleet> {
  return parseFleet(await readSmallFile(file, { noun: 'config file' }), file, opts);
}

/** The deployments `--deployment` selects (all when none is named); an unknown name is a usage error listing the known ones. */
export function selectDeployments(fleet: LoadedFleet, names: readonly string[] | undefined): LoadedConfig[] {
  if (!names || names.length === 0) return fleet.deployments;
  const known = fleet.deployments.map((d) => d.config.deployment);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    const list = known.length > 20 ? `${known.slice(0, 20).join(', ')}, ... (${known.length} in all)` : known.join(', ');
    throw new AuditError(ErrorCodes.USAGE, `unknown deployment${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => n.slice(0, 100)).join(', ')} (known: ${list})`);
  }
  return fleet.deployments.filter((d) => names.includes(d.config.deployment));
}

/** Where a fleet deployment's report files go: `<its outputs.dir>/<deployment>/` (today's format: `outputs.dir` itself). */
export function deploymentOutDir(fleet: Pick<LoadedFleet, 'single'>, config: AuditConfig, outRoot?: string): string {
  const root = resolve(outRoot ?? config.outputs.dir);
  return fleet.single ? root : resolve(root, config.deployment);
}

/** A path of the fleet's outputs as a link from the index page's folder. */
export function linkFrom(indexDir: string, target: string): string {
  return relative(indexDir, target).split('\\').join('/');
}
