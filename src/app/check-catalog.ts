/**
 * The built-in check catalog, written beside the compiled checks by the build, so that
 * `aegis-audit --version` and `aegis-audit checks list` answer without loading the command-line
 * parser, zod, node-cron or any check: a cron job or a CI gate pays start-up on every run.
 *
 * The catalog is exactly what the registry holds (each check's meta, in the registry's order)
 * and names the code it was taken from by a digest of every compiled check file and of the
 * registry. A catalog that is missing, unreadable or of other code is not used: the command
 * then loads the registry as before (so a `tsc` run alone never lists yesterday's checks).
 * With `--config` (plugin checks) `checks list` always loads the registry.
 *
 * This module loads nothing but node's own fs, path and crypto (through files-digest) and the package version.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { CheckMeta } from '../core/define-check';
import { TOOL_VERSION } from '../core/report';
import { filesDigest, filesUnder } from '../core/files-digest';

export const CATALOG_FILE = 'catalog.json';

interface CatalogFile {
  version: string;
  digest: string;
  checks: CheckMeta[];
}

/** The compiled tree holding checks/ and src/ (dist/ in a build; the repository under ts-jest). */
export const DEFAULT_ROOT = resolve(__dirname, '../..');

/** Digest of the code a catalog describes: every .js file under checks/ (recursively) and the registry. */
export function catalogDigest(root: string): string {
  return filesDigest(root, [...filesUnder(join(root, 'checks'), '.js'), join(root, 'src', 'core', 'registry.js')]);
}

/** The metas of the catalog written for the code under `root`, or undefined (none, unreadable, or of other code). */
export function readCatalog(root = DEFAULT_ROOT): CheckMeta[] | undefined {
  try {
    const c = JSON.parse(readFileSync(join(root, 'checks', CATALOG_FILE), 'utf8')) as Partial<CatalogFile>;
    if (c.version !== TOOL_VERSION || !Array.isArray(c.checks) || typeof c.digest !== 'string') return undefined;
    if (c.digest !== catalogDigest(root)) return undefined;
    return c.checks;
  } catch {
    return undefined;
  }
}

/** Writes the catalog of the registry's checks for the compiled code under `root`. */
export function writeCatalog(metas: readonly CheckMeta[], root = DEFAULT_ROOT): string {
  const file = join(root, 'checks', CATALOG_FILE);
  const body: CatalogFile = { version: TOOL_VERSION, digest: catalogDigest(root), checks: [...metas] };
  writeFileSync(file, JSON.stringify(body) + '\n');
  return file;
}

/** `checks list`'s output: a table, or the metas as JSON. */
export function formatCheckList(metas: readonly CheckMeta[], json: boolean): string {
  if (json) return JSON.stringify(metas, null, 2) + '\n';
  const w = Math.max(...metas.map((m) => m.id.length), 2);
  let out = '';
  for (const m of metas) {
    const srcs = m.sources.map((s) => (typeof s === 'string' ? s : s.join('|'))).join('+');
    out += `${m.id.padEnd(w)}  ${m.severity.padEnd(8)}  ${srcs.padEnd(18)}  ${m.title}\n`;
  }
  return out;
}

/**
 * Answers `--version` / `-V` and `checks list [--json]` (built-in checks) without the
 * command-line parser: the exit code, or undefined when `argv` is anything else or no
 * current catalog exists (the caller then runs the full command line).
 */
export function quickCommand(argv: readonly string[], out: (s: string) => void, root = DEFAULT_ROOT): number | undefined {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    out(`${TOOL_VERSION}\n`);
    return 0;
  }
  if (argv[0] === 'checks' && argv[1] === 'list' && (argv.length === 2 || (argv.length === 3 && argv[2] === '--json'))) {
    const metas = readCatalog(root);
    if (!metas) return undefined;
    out(formatCheckList(metas, argv.length === 3));
    return 0;
  }
  return undefined;
}

// `node dist/src/app/check-catalog.js`: the build's last step.
if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { registry } = require('../../checks') as typeof import('../../checks');
  const file = writeCatalog([...registry.values()].map((c) => c.meta));
  process.stdout.write(`wrote ${relative(process.cwd(), file)} (${registry.size} checks)\n`);
}
