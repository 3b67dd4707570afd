/**
 * Where the model artifacts live: a local directory (a volume the model server loads from)
 * and/or an S3 prefix (where Aegis's CI and Argo signers upload `model-archives/…` with their
 * `.sig.json`). Listing is bounded by `max_objects`; artifacts are streamed, never read whole;
 * signature files are read whole up to a small bound.
 *
 * S3 through @aws-sdk/client-s3: ListObjectsV2 pages (continuation tokens; a repeated token
 * stops the paginator) and GetObject bodies as streams. A missing bucket or denied access is an
 * error naming the bucket, never an empty listing.
 */
import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, NoSuchKey, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import picomatch from 'picomatch';
import type { ArtifactsConfig } from '../config/schema';
import type { ArtifactObject, ArtifactStore } from '../core/sources';
import { AuditError, ErrorCodes, badData, sourceUnavailable } from '../core/errors';
import { awsClientConfig, MAX_PAGES } from './aws';
import { readBounded } from './deploy-files';
import { stopIfAborted, wrapSourceError } from './errors';
import { walkTree } from './tree-walk';

const SOURCE = 'artifacts';

function tooMany(max: number, where: string): AuditError {
  return new AuditError(ErrorCodes.BAD_DATA, `${SOURCE}: ${where}: more than ${max} objects; narrow the location (exclude) or raise max_objects`, {
    source: SOURCE,
    reason: 'too_many_objects',
  });
}

export class ArtifactLocations implements ArtifactStore {
  readonly #c: ArtifactsConfig;
  readonly #excluded: (key: string) => boolean;
  #s3: S3Client | undefined;

  constructor(config: ArtifactsConfig) {
    this.#c = config;
    this.#excluded = config.exclude.length > 0 ? picomatch(config.exclude, { dot: true }) : () => false;
  }

  #prefix(): string {
    const p = this.#c.s3?.prefix ?? '';
    return p === '' || p.endsWith('/') ? p : `${p}/`;
  }

  #client(): S3Client {
    const s3 = this.#c.s3;
    if (!s3) throw new Error('no s3 location configured');
    this.#s3 ??= new S3Client({ ...awsClientConfig(s3, SOURCE), forcePathStyle: s3.force_path_style });
    return this.#s3;
  }

  locations(): string[] {
    const out: string[] = [];
    if (this.#c.dir) out.push(`dir:${this.#c.dir}`);
    if (this.#c.s3) out.push(`s3://${this.#c.s3.bucket}/${this.#prefix()}`);
    return out;
  }

  async *list(signal?: AbortSignal): AsyncIterable<ArtifactObject> {
    let n = 0;
    if (this.#c.dir) {
      const dir = this.#c.dir;
      for await (const f of walkTree(SOURCE, `directory ${dir}`, dir, { exclude: [], maxDepth: 64, maxFiles: this.#c.max_objects, signal })) {
        if (this.#excluded(f.rel)) continue;
        if (++n > this.#c.max_objects) throw tooMany(this.#c.max_objects, `directory ${dir}`);
        yield { store: 'dir', key: f.rel, size: f.size, location: f.abs };
      }
    }
    if (this.#c.s3) {
      const { bucket } = this.#c.s3;
      const prefix = this.#prefix();
      const where = `s3://${bucket}/${prefix}`;
      const found: ArtifactObject[] = [];
      const pages = paginateListObjectsV2({ client: this.#client(), pageSize: 1000, stopOnSameToken: true }, { Bucket: bucket, Prefix: prefix });
      let count = 0;
      try {
        for await (const page of pages) {
          stopIfAborted(signal, SOURCE, `listing ${where}`);
          if (++count > MAX_PAGES) throw badData(SOURCE, where, `more than ${MAX_PAGES} pages`);
          for (const o of page.Contents ?? []) {
            if (!o.Key || !o.Key.startsWith(prefix) || o.Key.endsWith('/')) continue;
            const key = o.Key.slice(prefix.length);
            if (this.#excluded(key)) continue;
            if (++n > this.#c.max_objects) throw tooMany(this.#c.max_objects, where);
            found.push({ store: 's3', key, size: typeof o.Size === 'number' ? o.Size : 0, location: `s3://${bucket}/${o.Key}` });
          }
        }
      } catch (e) {
        throw wrapSourceError(SOURCE, `listing ${where}`, e);
      }
      found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      yield* found;
    }
  }

  async *stream(obj: ArtifactObject, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    if (obj.store === 'dir') {
      const path = join(this.#c.dir as string, obj.key);
      let fh;
      try {
        // Non-blocking open, checked after opening: a name swapped for a FIFO cannot hang the run.
        fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
        if (!(await fh.stat()).isFile()) throw sourceUnavailable(SOURCE, 'not_a_file', `${path} is not a regular file`);
      } catch (e) {
        await fh?.close();
        throw wrapSourceError(SOURCE, `reading ${path}`, e);
      }
      const stream = createReadStream('', { fd: fh, highWaterMark: 1024 * 1024, signal });
      try {
        yield* stream as AsyncIterable<Buffer>;
      } catch (e) {
        stopIfAborted(signal, SOURCE, `reading ${path}`);
        throw wrapSourceError(SOURCE, `reading ${path}`, e);
      } finally {
        stream.destroy();
      }
      return;
    }
    const { bucket } = this.#c.s3 as NonNullable<ArtifactsConfig['s3']>;
    const key = `${this.#prefix()}${obj.key}`;
    const what = `reading s3://${bucket}/${key}`;
    let body: AsyncIterable<Uint8Array> & { destroy?: () => void };
    try {
      const res = await this.#client().send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      if (!res.Body) throw sourceUnavailable(SOURCE, 'malformed_response', `${what}: no body`);
      body = res.Body as AsyncIterable<Uint8Array> & { destroy?: () => void };
    } catch (e) {
      stopIfAborted(signal, SOURCE, what);
      throw wrapSourceError(SOURCE, what, e);
    }
    try {
      yield* body;
    } catch (e) {
      stopIfAborted(signal, SOURCE, what);
      throw wrapSourceError(SOURCE, what, e);
    } finally {
      body.destroy?.();
    }
  }

  async readSmall(obj: Pick<ArtifactObject, 'store' | 'key'>, maxBytes: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    if (obj.store === 'dir') {
      const path = join(this.#c.dir as string, obj.key);
      let read;
      try {
        read = await readBounded(path, maxBytes);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw wrapSourceError(SOURCE, `reading ${path}`, e);
      }
      if ('notFile' in read) throw badData(SOURCE, path, 'not a regular file');
      if ('tooLarge' in read) throw badData(SOURCE, path, `larger than ${maxBytes} bytes`);
      return read.bytes;
    }
    const { bucket } = this.#c.s3 as NonNullable<ArtifactsConfig['s3']>;
    const key = `${this.#prefix()}${obj.key}`;
    const what = `reading s3://${bucket}/${key}`;
    try {
      const res = await this.#client().send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${maxBytes}` }), { abortSignal: signal });
      const chunks: Uint8Array[] = [];
      let n = 0;
      for await (const c of (res.Body ?? []) as AsyncIterable<Uint8Array>) {
        n += c.length;
        if (n > maxBytes) {
          (res.Body as { destroy?: () => void }).destroy?.();
          throw badData(SOURCE, `s3://${bucket}/${key}`, `larger than ${maxBytes} bytes`);
        }
        chunks.push(c);
      }
      return Buffer.concat(chunks);
    } catch (e) {
      if (e instanceof NoSuchKey || (e as { name?: string }).name === 'NoSuchKey') return undefined;
      stopIfAborted(signal, SOURCE, what);
      throw wrapSourceError(SOURCE, what, e);
    }
  }

  close(): void {
    this.#s3?.destroy();
  }
}
