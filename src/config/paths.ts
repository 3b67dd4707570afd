/**
 * The config keys that hold file paths. Relative paths are relative to the config file —
 * defaults included (`state.dir`, `outputs.dir`), so where state and reports land does not
 * depend on the directory the auditor was started from. This one list serves the loader
 * (resolving them) and anything that moves a config file (rebasing them), so the two can
 * never disagree.
 */
import { isAbsolute, join, relative, resolve } from 'node:path';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function at(root: unknown, path: readonly string[]): Obj | undefined {
  let cur: unknown = root;
  for (const k of path) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return isObj(cur) ? cur : undefined;
}

/** Maps: every value of these objects is a path. */
const PATH_MAPS: readonly (readonly string[])[] = [
  ['sources', 'logs', 'files'],
  ['sources', 'secrets', 'env_files'],
  ['sources', 'secrets', 'pem_files'],
  ['sources', 'deploy', 'trees'],
  ['sources', 'repo', 'roots'],
];
/** Single path fields: [object path, key]. */
const PATH_FIELDS: readonly [readonly string[], string][] = [
  [['sources', 'secrets', 'vault'], 'token_file'],
  [['sources', 'secrets', 'vault'], 'ca_file'],
  [['sources', 'artifacts'], 'dir'],
  ...(['ca_file', 'client_cert_file', 'client_key_file', 'unenrolled_cert_file', 'unenrolled_key_file', 'token_signing_key_file'] as const).map(
    (k): [readonly string[], string] => [['sources', 'endpoints'], k],
  ),
  [[], 'waivers'],
  [[], 'attestations'],
  [['state'], 'dir'],
  [['outputs'], 'dir'],
];

/** Applies `fn` to every path-valued field of a config object (parsed or raw), in place. */
export function mapConfigPaths(config: unknown, fn: (p: string) => string): void {
  for (const m of PATH_MAPS) {
    const o = at(config, m);
    if (o) for (const k of Object.keys(o)) if (typeof o[k] === 'string') o[k] = fn(o[k] as string);
  }
  for (const [p, key] of PATH_FIELDS) {
    const o = at(config, p);
    if (o && typeof o[key] === 'string') o[key] = fn(o[key] as string);
  }
  if (isObj(config) && Array.isArray(config.plugins)) config.plugins = config.plugins.map((p) => (typeof p === 'string' ? fn(p) : p));
}

export function resolveConfigPaths(config: unknown, baseDir: string): void {
  mapConfigPaths(config, (p) => (isAbsolute(p) ? p : resolve(baseDir, p)));
}

/** Rewrites relative paths of a config written for `fromDir` so they work from `toDir`. */
export function rebaseConfigPaths(config: unknown, fromDir: string, toDir: string): void {
  mapConfigPaths(config, (p) => (isAbsolute(p) ? p : relative(toDir, join(fromDir, p)) || '.'));
}
