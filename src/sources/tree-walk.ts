/**
 * A bounded walk of a directory tree the audited deployment owns (deploy manifests, model
 * artifacts). The tree is hostile: it may hold symlink loops, links out of the tree, FIFOs
 * that would block a read, absurd depth or millions of files. So:
 * - symlinks are followed only when their target resolves inside the tree; each directory and
 *   each file is visited once by its real path (a loop, or a second name for a file already
 *   walked, is skipped and reported);
 * - only regular files are yielded (never a FIFO, socket or device);
 * - depth and file count are bounded by the caller;
 * - names starting with `..` are never entered: they are Kubernetes' atomic-writer internals
 *   (`..data`, `..2026_…`) behind the visible names of a mounted ConfigMap or Secret.
 */
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { AuditError, ErrorCodes, sourceUnavailable } from '../core/errors';
import { stopIfAborted, wrapSourceError } from './errors';

export interface WalkedFile {
  /** Path inside the tree, `/`-separated. */
  rel: string;
  /** The path to open (the name in the tree; a symlink resolves on open). */
  abs: string;
  size: number;
  mtimeMs: number;
}

export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface WalkOptions {
  /** Names never entered, at any depth. */
  exclude: readonly string[];
  maxDepth: number;
  /** Only files this accepts are yielded and counted (the rest are counted as ignored). */
  accept?: (rel: string, name: string) => boolean;
  /** Directories (by path inside the tree) this refuses are not entered; default every one. */
  enter?: (rel: string) => boolean;
  /** More accepted files than this is an error naming the tree. */
  maxFiles: number;
  onIgnored?: () => void;
  onSkipped?: (s: SkippedEntry) => void;
  signal?: AbortSignal;
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Walks `root` depth-first in name order (a directory's symlinks after its real entries). `source` and `what` name it in errors (`deploy`,
 * `tree repo (/srv/deploy)`): a root that is missing or not a directory is an error, never an
 * empty tree.
 */
export async function* walkTree(source: string, what: string, root: string, opts: WalkOptions): AsyncIterable<WalkedFile> {
  let rootReal: string;
  try {
    rootReal = await realpath(root);
    if (!(await stat(rootReal)).isDirectory()) throw sourceUnavailable(source, 'not_found', `${what} is not a directory`);
  } catch (e) {
    throw wrapSourceError(source, `reading ${what}`, e);
  }
  const exclude = new Set(opts.exclude);
  const visitedDirs = new Set<string>([rootReal]);
  const seenFiles = new Map<string, string>();
  let accepted = 0;
  const skip = (path: string, reason: string) => opts.onSkipped?.({ path, reason });

  // Directories still to walk, last in first out; children pushed in reverse name order.
  const stack: { abs: string; rel: string; depth: number }[] = [{ abs: root, rel: '', depth: 0 }];
  while (stack.length > 0) {
    stopIfAborted(opts.signal, source, `walking ${what}`);
    const dir = stack.pop() as { abs: string; rel: string; depth: number };
    let names: string[];
    try {
      // Real entries before symlinks, each in name order: a directory reached both ways is named by its real path.
      const entries = await readdir(dir.abs, { withFileTypes: true });
      const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      names = [...entries.filter((d) => !d.isSymbolicLink()).sort(byName), ...entries.filter((d) => d.isSymbolicLink()).sort(byName)].map((d) => d.name);
    } catch (e) {
      if (dir.rel === '') throw wrapSourceError(source, `reading ${what}`, e);
      skip(dir.rel, `directory not readable (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      continue;
    }
    const subdirs: { abs: string; rel: string; depth: number }[] = [];
    for (const name of names) {
      if (exclude.has(name) || name.startsWith('..')) continue;
      const abs = join(dir.abs, name);
      const rel = dir.rel ? `${dir.rel}/${name}` : name;
      let st;
      let real = abs;
      try {
        const l = await lstat(abs);
        if (l.isSymbolicLink()) {
          try {
            real = await realpath(abs);
          } catch {
            skip(rel, 'symlink whose target does not exist (or a symlink loop)');
            continue;
          }
          if (!inside(rootReal, real)) {
            skip(rel, 'symlink pointing outside the tree: not followed');
            continue;
          }
          st = await stat(real);
        } else {
          st = l;
          if (l.isDirectory()) real = await realpath(abs);
        }
      } catch (e) {
        skip(rel, `not readable (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        continue;
      }
      if (st.isDirectory()) {
        if (visitedDirs.has(real)) {
          skip(rel, 'directory already walked under another name (a symlink loop or second link): not walked again');
          continue;
        }
        if (dir.depth + 1 > opts.maxDepth) {
          skip(rel, `deeper than ${opts.maxDepth} levels: not walked`);
          continue;
        }
        if (opts.enter && !opts.enter(rel)) continue;
        visitedDirs.add(real);
        subdirs.push({ abs, rel, depth: dir.depth + 1 });
        continue;
      }
      if (!st.isFile()) {
        if (opts.accept?.(rel, name) ?? true) skip(rel, 'not a regular file (FIFO, socket or device): not read');
        continue;
      }
      if (opts.accept && !opts.accept(rel, name)) {
        opts.onIgnored?.();
        continue;
      }
      const realFile = real === abs ? await realpath(abs).catch(() => abs) : real;
      const first = seenFiles.get(realFile);
      if (first !== undefined) {
        skip(rel, `the same file as ${first}: read once`);
        continue;
      }
      seenFiles.set(realFile, rel);
      if (++accepted > opts.maxFiles) {
        throw new AuditError(ErrorCodes.BAD_DATA, `${source}: ${what}: more than ${opts.maxFiles} files to read; narrow the tree (exclude) or raise the limit`, {
          source,
          reason: 'too_many_files',
        });
      }
      yield { rel, abs, size: st.size, mtimeMs: st.mtimeMs };
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
  }
}
