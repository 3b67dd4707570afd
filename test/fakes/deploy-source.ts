/** An in-memory DeploySource: files by `tree:path`, with text or the reason they were not read. */
import type { DeployFile, DeploySource, DeployWalkStats } from '../../src/core/sources';
import { deployFileKind } from '../../src/sources/deploy-files';
import { Failures } from './failures';

export class FakeDeploySource implements DeploySource {
  readonly failures = new Failures<'files'>('deploy');
  readonly #files: DeployFile[];
  readonly #skipped: DeployWalkStats['skippedLinks'];

  /** `files`: `tree:path` → text, or `{ unreadable }`. */
  constructor(files: Record<string, string | { unreadable: string }>, skipped: DeployWalkStats['skippedLinks'] = []) {
    this.#files = Object.entries(files).map(([k, v]) => {
      const i = k.indexOf(':');
      const tree = k.slice(0, i);
      const path = k.slice(i + 1);
      const kind = deployFileKind(path.slice(path.lastIndexOf('/') + 1));
      if (!kind) throw new Error(`fake deploy source: ${path} is neither YAML nor a Dockerfile`);
      return typeof v === 'string' ? { tree, path, kind, text: v } : { tree, path, kind, unreadable: v.unreadable };
    });
    this.#skipped = skipped;
  }

  fail(error?: Error): this {
    this.failures.set('files', error);
    return this;
  }

  trees(): string[] {
    return [...new Set(this.#files.map((f) => f.tree))].sort();
  }

  async *files(): AsyncIterable<DeployFile> {
    this.failures.check('files');
    for (const f of this.#files) yield { ...f };
  }

  stats(): DeployWalkStats {
    return { files: this.#files.length, ignored: 0, skippedLinks: [...this.#skipped] };
  }
}
