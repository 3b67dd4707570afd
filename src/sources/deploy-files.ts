/**
 * Deploy trees: the Kubernetes manifests, compose files, Dockerfiles and CI workflows of the
 * deployment, as directories on disk (a repository checkout, rendered manifests, a mounted
 * ConfigMap). Files are chosen by name (`*.yaml`, `*.yml`, `Dockerfile`, `Dockerfile.*`,
 * `*.Dockerfile`, `Containerfile`) and read whole up to a size bound; a file that is too large,
 * binary or not UTF-8 is handed on as unreadable, so the check can say it was not scanned.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { DeployConfig } from '../config/schema';
import type { DeployFile, DeployFileKind, DeploySource, DeployWalkStats } from '../core/sources';
import { stopIfAborted } from './errors';
import { walkTree } from './tree-walk';

const SOURCE = 'deploy';
/** Skipped entries kept for the report; more are counted only. */
const MAX_SKIPPED_KEPT = 100;

export function deployFileKind(name: string): DeployFileKind | undefined {
  const n = name.toLowerCase();
  if (n.endsWith('.yaml') || n.endsWith('.yml')) return 'yaml';
  if (n === 'dockerfile' || n === 'containerfile' || n.startsWith('dockerfile.') || n.startsWith('containerfile.') || n.endsWith('.dockerfile')) return 'dockerfile';
  return undefined;
}

/**
 * Reads at most `max` bytes of a regular file. Opened non-blocking and checked after opening,
 * so a name swapped for a FIFO between the walk and the read cannot hang the run.
 */
export async function readBounded(path: string, max: number): Promise<{ bytes: Buffer } | { tooLarge: number } | { notFile: true }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { notFile: true };
    if (st.size > max) return { tooLarge: st.size };
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    // It grew past the bound since stat: as too large as if it had been then.
    if (n > max) return { tooLarge: n };
    return { bytes: buf.subarray(0, n) };
  } finally {
    await fh.close();
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text of a file that should be text, or why it is not. */
export function asText(bytes: Buffer): { text: string } | { unreadable: string } {
  if (bytes.includes(0)) return { unreadable: 'binary content (NUL bytes)' };
  try {
    return { text: utf8.decode(bytes).replace(/^\uFEFF/, '') };
  } catch {
    return { unreadable: 'not UTF-8 text' };
  }
}

export class FsDeploySource implements DeploySource {
  readonly #config: DeployConfig;
  #stats: DeployWalkStats = { files: 0, ignored: 0, skippedLinks: [] };

  constructor(config: DeployConfig) {
    this.#config = config;
  }

  trees(): string[] {
    return Object.keys(this.#config.trees).sort();
  }

  stats(): DeployWalkStats {
    return { ...this.#stats, skippedLinks: [...this.#stats.skippedLinks] };
  }

  async *files(signal?: AbortSignal): AsyncIterable<DeployFile> {
    const c = this.#config;
    const stats: DeployWalkStats = { files: 0, ignored: 0, skippedLinks: [] };
    this.#stats = stats;
    for (const tree of this.trees()) {
      const root = c.trees[tree];
      const walk = walkTree(SOURCE, `tree ${tree} (${root})`, root, {
        exclude: c.exclude,
        maxDepth: c.max_depth,
        maxFiles: c.max_files,
        accept: (_rel, name) => deployFileKind(name) !== undefined,
        onIgnored: () => void stats.ignored++,
        onSkipped: (s) => {
          if (stats.skippedLinks.length < MAX_SKIPPED_KEPT) stats.skippedLinks.push({ tree, ...s });
        },
        signal,
      });
      for await (const f of walk) {
        stopIfAborted(signal, SOURCE, `reading tree ${tree}`);
        stats.files++;
        const kind = deployFileKind(f.rel.slice(f.rel.lastIndexOf('/') + 1)) as DeployFileKind;
        const base = { tree, path: f.rel, kind };
        let read;
        try {
          read = await readBounded(f.abs, c.max_file_bytes);
        } catch (e) {
          yield { ...base, unreadable: `not readable (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
          continue;
        }
        if ('notFile' in read) yield { ...base, unreadable: 'not a regular file' };
        else if ('tooLarge' in read) yield { ...base, unreadable: `larger than ${c.max_file_bytes} bytes (${read.tooLarge} bytes)` };
        else yield { ...base, ...asText(read.bytes) };
      }
    }
  }
}
