/**
 * CLI-level tests run the compiled code (bin/aegis-audit.js → dist/). A dist/ older than the
 * sources would test yesterday's code and pass or fail for the wrong reason, so the jest run
 * rebuilds it first when any source under src/, checks/ or bench/ is newer than its output (or
 * has none), and the CLI tests refuse to run on a stale build. Templates are read from
 * templates/ at run time (src/outputs/render.ts) unless the build's precompiled ones are of
 * exactly those files, so they are never stale in dist/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '../..');
const COMPILED_DIRS = ['src', 'checks', 'bench'];

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Sources whose compiled file in dist/ is missing or older than they are, relative to `root`. */
export function staleBuildOutputs(root = REPO_ROOT): string[] {
  const stale: string[] = [];
  for (const d of COMPILED_DIRS) {
    for (const src of tsFiles(join(root, d))) {
      const rel = relative(root, src);
      const out = join(root, 'dist', rel.replace(/\.ts$/, '.js'));
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) stale.push(rel);
    }
  }
  return stale.sort();
}

/** Throws (naming the sources) when dist/ is older than the sources: a CLI-level test would run stale code. */
export function expectFreshBuild(root = REPO_ROOT): void {
  const stale = staleBuildOutputs(root);
  if (stale.length > 0) {
    throw new Error(`dist/ is older than ${stale.length} source file(s) (${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ', …' : ''}): run \`npm run build\` (npm test does)`);
  }
}

/** Rebuilds dist/ (tsc -p tsconfig.build.json, then the check catalog and the precompiled templates) when it is stale; returns the sources that were newer. */
export function rebuildIfStale(root = REPO_ROOT): string[] {
  const stale = staleBuildOutputs(root);
  if (stale.length === 0) return [];
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'pipe' });
    // The build's last step (package.json "build"): the check catalog of the new code.
    execFileSync(process.execPath, [join(root, 'dist', 'src', 'app', 'check-catalog.js')], { cwd: root, stdio: 'pipe' });
    execFileSync(process.execPath, [join(root, 'dist', 'src', 'outputs', 'template-cache.js')], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`dist/ was stale (${stale.slice(0, 3).join(', ')}…) and rebuilding it failed:\n${out}`);
  }
  expectFreshBuild(root);
  return stale;
}
