/** An in-memory ArtifactStore: objects by `<store>:<key>` with their bytes; streams in small chunks. */
import type { ArtifactObject, ArtifactStore } from '../../src/core/sources';
import { badData } from '../../src/core/errors';
import { Failures } from './failures';

type Method = 'list' | 'stream' | 'readSmall';

export class FakeArtifactStore implements ArtifactStore {
  readonly failures = new Failures<Method>('artifacts');
  readonly #objects: Map<string, Buffer>;
  /** Keys streamed (hashed), in order. */
  readonly streamed: string[] = [];

  constructor(objects: Record<string, string | Buffer>) {
    this.#objects = new Map(Object.entries(objects).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]));
  }

  fail(method: Method, error?: Error): this {
    this.failures.set(method, error);
    return this;
  }

  locations(): string[] {
    return ['dir:/models'];
  }

  async *list(): AsyncIterable<ArtifactObject> {
    this.failures.check('list');
    for (const [k, v] of [...this.#objects].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const i = k.indexOf(':');
      const store = k.slice(0, i) as 'dir' | 's3';
      yield { store, key: k.slice(i + 1), size: v.length, location: store === 'dir' ? `/models/${k.slice(i + 1)}` : `s3://models/${k.slice(i + 1)}` };
    }
  }

  async *stream(obj: ArtifactObject): AsyncIterable<Uint8Array> {
    this.failures.check('stream');
    this.streamed.push(`${obj.store}:${obj.key}`);
    const b = this.#objects.get(`${obj.store}:${obj.key}`);
    if (!b) throw new Error(`fake artifact store: no ${obj.key}`);
    for (let i = 0; i < b.length; i += 7) yield b.subarray(i, i + 7);
  }

  async readSmall(obj: Pick<ArtifactObject, 'store' | 'key'>, maxBytes: number): Promise<Buffer | undefined> {
    this.failures.check('readSmall');
    const b = this.#objects.get(`${obj.store}:${obj.key}`);
    if (b && b.length > maxBytes) throw badData('artifacts', obj.key, `larger than ${maxBytes} bytes`);
    return b;
  }
}
