/**
 * The built-in templates precompiled by the build (`node dist/src/outputs/template-cache.js`
 * writes `templates.precompiled.js` beside this file), so that a one-shot run that writes the
 * HTML report loads handlebars' runtime alone and compiles nothing: compiling the report's
 * templates took about 55 ms of every run, and the compiler's modules more.
 *
 * The file names the templates it was made from by a digest of every `.hbs` file (names and
 * bytes). One that is missing, unreadable or of other templates is not used: the templates are
 * then compiled from disk as before (templates edited in place still show).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { filesDigest, filesUnder } from '../core/files-digest';

/** Template specs as handlebars' precompile() writes them, loaded by require (never eval). */
export interface PrecompiledTemplates {
  digest: string;
  templates: Record<string, unknown>;
  partials: Record<string, unknown>;
}

/** Beside this module: dist/src/outputs/ in a build (none under ts-jest, which compiles from disk). */
export const PRECOMPILED_FILE = resolve(__dirname, 'templates.precompiled.js');
const FILE = PRECOMPILED_FILE;

/** Digest of a templates folder: every `.hbs` file under it, by path and content. */
export function templatesDigest(dir: string): string {
  return filesDigest(dir, filesUnder(dir, '.hbs'));
}

/** The precompiled templates of `dir`, when the build wrote them (to `file`) from exactly its files. */
export function precompiledFor(dir: string, file = FILE): PrecompiledTemplates | undefined {
  if (!existsSync(file)) return undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const p = require(file) as PrecompiledTemplates;
    return p.digest === templatesDigest(dir) ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Precompiles every template and partial of `dir` into `out` (the build's last step). */
export function writePrecompiled(dir: string, out = FILE): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Handlebars = require('handlebars') as typeof import('handlebars');
  const spec = (file: string) => Handlebars.precompile(readFileSync(file, 'utf8'), { noEscape: false }) as string;
  const entries = (sub: string) =>
    existsSync(join(dir, sub))
      ? readdirSync(join(dir, sub))
          .filter((f) => f.endsWith('.hbs'))
          .sort()
          .map((f) => `    ${JSON.stringify(f.slice(0, -'.hbs'.length))}: ${spec(join(dir, sub, f))},`)
      : [];
  const text = [
    '// Written by the build (src/outputs/template-cache.ts) from templates/: do not edit.',
    'module.exports = {',
    `  digest: ${JSON.stringify(templatesDigest(dir))},`,
    '  templates: {',
    ...entries('.'),
    '  },',
    '  partials: {',
    ...entries('partials'),
    '  },',
    '};',
    '',
  ].join('\n');
  writeFileSync(out, text);
}

if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TEMPLATES_DIR } = require('./render') as typeof import('./render');
  writePrecompiled(TEMPLATES_DIR);
}
