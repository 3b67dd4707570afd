/** An in-memory RepoSource: files by `root:path`, handed on in chunks of a chosen size (to exercise lines cut across chunks). */
import type { RepoBaseline, RepoFile, RepoSkipped, RepoSource } from '../../src/core/sources';
import { Failures } from './failures';

export type FakeRepoFile = string | Buffer | { skipped: string };

export class FakeRepoSource implements RepoSource {
  readonly failures = new Failures<'files' | 'baseline'>('repo');
  readonly #files: Map<string, FakeRepoFile>;
  readonly #baselines: Record<string, string | { unreadable: string } | undefined>;
  readonly #chunk: number;
  readonly #baselinePath: string;

  /**
   * `files`: `root:path` → content (or why the walk skipped it); `baselines`: root → the
   * baseline's text, `{ unreadable }`, or absent when the root has no key here.
   */
  constructor(
    files: Record<string, FakeRepoFile>,
    baselines: Record<string, string | { unreadable: string } | undefined> = {},
    opts: { chunkBytes?: number; baselinePath?: string } = {},
  ) {
    this.#files = new Map(Object.entries(files));
    this.#baselines = baselines;
    this.#chunk = opts.chunkBytes ?? 64 * 1024;
    this.#baselinePath = opts.baselinePath ?? '.secrets.baseline';
  }

  fail(method: 'files' | 'baseline', error?: Error): this {
    this.failures.set(method, error);
    return this;
  }

  roots(): string[] {
    const roots = new Set([...this.#files.keys()].map((k) => k.slice(0, k.indexOf(':'))));
    for (const r of Object.keys(this.#baselines)) roots.add(r);
    return [...roots].sort();
  }

  async *files(root: string): AsyncIterable<RepoFile | RepoSkipped> {
    this.failures.check('files');
    for (const [k, v] of this.#files) {
      if (!k.startsWith(`${root}:`)) continue;
      const path = k.slice(root.length + 1);
      if (typeof v === 'object' && !Buffer.isBuffer(v)) {
        yield { root, path, skipped: v.skipped };
        continue;
      }
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      const chunk = this.#chunk;
      yield {
        root,
        path,
        size: bytes.length,
        async *chunks() {
          for (let i = 0; i < bytes.length; i += chunk) yield Buffer.from(bytes.subarray(i, i + chunk));
        },
      };
    }
  }

  async baseline(root: string): Promise<RepoBaseline> {
    this.failures.check('baseline');
    const b = this.#baselines[root];
    const path = this.#baselinePath;
    if (b === undefined) return { root, path, status: 'absent' };
    if (typeof b === 'object') return { root, path, status: 'unreadable', reason: b.unreadable };
    return { root, path, status: 'ok', text: b };
  }
}
