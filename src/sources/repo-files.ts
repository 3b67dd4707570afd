/**
 * Repository checkouts for the secret scan: every file of each configured root that the
 * include/exclude globs select (never `.git`, never the baseline itself), handed on as a stream
 * of bounded chunks so a large file is never held whole; and each root's detect-secrets
 * baseline, read bounded. The walk is the shared bounded one (symlinks only inside the root,
 * regular files only, depth and count bounded).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import type { RepoConfig } from '../config/schema';
import type { RepoBaseline, RepoFile, RepoSkipped, RepoSource } from '../core/sources';
import { stopIfAborted, wrapSourceError } from './errors';
import { asText, readBounded } from './deploy-files';
import { walkTree } from './tree-walk';

const SOURCE = 'repo';
/** Bytes per chunk handed to the scan. */
export const REPO_CHUNK_BYTES = 256 * 1024;

export class FsRepoSource implements RepoSource {
  readonly #config: RepoConfig;
  readonly #include: (p: string) => boolean;
  readonly #exclude: (p: string) => boolean;

  constructor(config: RepoConfig) {
    this.#config = config;
    this.#include = picomatch(config.include, { dot: true });
    this.#exclude = picomatch(config.exclude, { dot: true });
  }

  roots(): string[] {
    return Object.keys(this.#config.roots).sort();
  }

  #dir(root: string): string {
    const dir = this.#config.roots[root];
    if (dir === undefined) throw new Error(`repo: no root named ${root}`);
    return dir;
  }

  async *files(root: string, signal?: AbortSignal): AsyncIterable<RepoFile | RepoSkipped> {
    const c = this.#config;
    const baseline = c.baseline.replace(/^\.\//, '');
    const skipped: RepoSkipped[] = [];
    const walk = walkTree(SOURCE, `root ${root} (${this.#dir(root)})`, this.#dir(root), {
      exclude: ['.git'],
      maxDepth: c.max_depth,
      maxFiles: c.max_files,
      // `dir/**` excludes the folder itself: it is not entered.
      enter: (rel) => !this.#exclude(rel) && !this.#exclude(`${rel}/`),
      accept: (rel) => rel !== baseline && this.#include(rel) && !this.#exclude(rel),
      onSkipped: (s) => void skipped.push({ root, path: s.path, skipped: s.reason }),
      signal,
    });
    for await (const f of walk) {
      stopIfAborted(signal, SOURCE, `reading root ${root}`);
      while (skipped.length > 0) yield skipped.shift() as RepoSkipped;
      if (f.size > c.max_file_bytes) {
        yield { root, path: f.rel, skipped: `larger than ${c.max_file_bytes} bytes (${f.size} bytes)` };
        continue;
      }
      yield { root, path: f.rel, size: f.size, chunks: (s?: AbortSignal) => readChunks(f.abs, c.max_file_bytes, s) };
    }
    while (skipped.length > 0) yield skipped.shift() as RepoSkipped;
  }

  async baseline(root: string): Promise<RepoBaseline> {
    const path = this.#config.baseline;
    const abs = join(this.#dir(root), path);
    let read;
    try {
      read = await readBounded(abs, this.#config.max_baseline_bytes);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { root, path, status: 'absent' };
      throw wrapSourceError(SOURCE, `reading the baseline of root ${root}`, e);
    }
    if ('notFile' in read) return { root, path, status: 'unreadable', reason: 'not a regular file' };
    if ('tooLarge' in read) return { root, path, status: 'unreadable', reason: `larger than ${this.#config.max_baseline_bytes} bytes (sources.repo.max_baseline_bytes)` };
    const text = asText(read.bytes);
    return 'text' in text ? { root, path, status: 'ok', text: text.text } : { root, path, status: 'unreadable', reason: text.unreadable };
  }
}

/**
 * The bytes of a regular file, a chunk at a time, at most `max` of them (a file grown past the
 * bound since the walk is read to the bound). Opened non-blocking and checked after opening, so
 * a name swapped for a FIFO cannot hang the run.
 */
async function* readChunks(path: string, max: number, signal?: AbortSignal): AsyncIterable<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw wrapSourceError(SOURCE, 'opening a file', e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return;
    let pos = 0;
    while (pos < max) {
      stopIfAborted(signal, SOURCE, 'reading a file');
      // Sized to what is left (plus a byte to see growth): most files are small, and a 256 KiB buffer each is garbage.
      const buf = Buffer.allocUnsafe(Math.min(REPO_CHUNK_BYTES, max - pos, Math.max(st.size - pos, 0) + 1));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
