import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The files under `dir` (recursively) whose names end in `ext`, as absolute paths. */
export function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(ext))
    .map((e) => join(e.parentPath, e.name));
}

/**
 * SHA-256 (hex) of `files` by their paths relative to `root` and their bytes, in path order:
 * what a build step's output was made from (the check catalog, the precompiled templates).
 */
export function filesDigest(root: string, files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files.map((f) => relative(root, f)).sort()) {
    h.update(f);
    h.update('\0');
    h.update(readFileSync(join(root, f)));
    h.update('\0');
  }
  return h.digest('hex');
}
