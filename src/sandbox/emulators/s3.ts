/**
 * Amazon S3 REST emulator, the part an artifact auditor reads: ListObjectsV2, GetObject (with
 * Range) and HeadObject, over path-style (`/<bucket>/<key>`) and virtual-hosted
 * (`<bucket>.<host>/<key>`) addressing, as @aws-sdk/client-s3 sends them.
 *
 * Wire facts kept (S3 API reference, ListObjectsV2 / GetObject / Error responses):
 * - ListObjectsV2 is `GET /<bucket>?list-type=2` with `prefix`, `delimiter`, `max-keys` (at
 *   most 1000 are returned whatever is asked), `continuation-token`, `start-after`,
 *   `encoding-type=url`, `fetch-owner`; the answer is a `ListBucketResult` XML document in the
 *   2006-03-01 namespace with `Contents` (Key, LastModified ISO-8601 with milliseconds, quoted
 *   ETag, Size, StorageClass), `CommonPrefixes`, `KeyCount`, `IsTruncated` and
 *   `NextContinuationToken` only while truncated. Keys are listed in UTF-8 binary order.
 * - GetObject answers the bytes with Content-Length, ETag, Last-Modified (HTTP-date),
 *   Accept-Ranges; `Range: bytes=a-b` answers 206 with Content-Range; an unsatisfiable range
 *   416 InvalidRange.
 * - Errors are XML `<Error><Code>…</Code><Message>…</Message>…<RequestId/><HostId/></Error>`
 *   with `x-amz-request-id`: NoSuchBucket and NoSuchKey 404, AccessDenied 403, InvalidArgument
 *   400 (a continuation token S3 did not make). HEAD errors have no body.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FaultController } from './faults';
import { LoopbackListener, type RunningEmulator, type StartOptions } from './listener';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MAX_KEYS = 1000;

interface StoredObject {
  key: string;
  body: Buffer;
  etag: string;
  lastModified: Date;
  contentType: string;
}

export interface S3EmulatorOptions {
  /** Largest page ListObjectsV2 returns (S3: 1000); smaller makes tests paginate. */
  maxKeysCap?: number;
}

export interface PutObjectInput {
  bucket: string;
  key: string;
  body: Buffer | string;
  lastModified?: Date;
  contentType?: string;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** S3's encoding-type=url: keys and prefixes percent-encoded, `/` kept. */
function urlEncodeKey(s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, '/');
}

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class S3Emulator {
  readonly faults = new FaultController();
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  private readonly denied = new Set<string>();
  private readonly maxKeysCap: number;
  private readonly listener: LoopbackListener;
  private readonly hostId = randomBytes(32).toString('base64');

  constructor(options: S3EmulatorOptions = {}) {
    this.maxKeysCap = Math.min(MAX_KEYS, options.maxKeysCap ?? MAX_KEYS);
    this.listener = new LoopbackListener(
      'S3',
      (req, res) => {
        try {
          this.handle(req, res);
        } catch {
          if (!res.headersSent) this.error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.', req.method === 'HEAD');
          else res.destroy();
        }
      },
      this.faults,
    );
  }

  start(options: StartOptions = {}): Promise<RunningEmulator> {
    return this.listener.start(options);
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
  }

  putObject(o: PutObjectInput): void {
    this.createBucket(o.bucket);
    const body = Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
    (this.buckets.get(o.bucket) as Map<string, StoredObject>).set(o.key, {
      key: o.key,
      body,
      etag: `"${createHash('md5').update(body).digest('hex')}"`,
      lastModified: o.lastModified ?? new Date(),
      contentType: o.contentType ?? 'application/octet-stream',
    });
  }

  /** Every request on this bucket answers 403 AccessDenied (a bucket policy the caller fails). */
  denyBucket(name: string, denied = true): void {
    if (denied) this.denied.add(name);
    else this.denied.delete(name);
  }

  // ---- HTTP -----------------------------------------------------------------------------

  private headers(extra: Record<string, string | number> = {}): Record<string, string | number> {
    return { 'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase(), 'x-amz-id-2': this.hostId, Date: new Date().toUTCString(), Server: 'AmazonS3', ...extra };
  }

  private error(res: ServerResponse, status: number, code: string, message: string, head: boolean, extra: Record<string, string> = {}): void {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const fields = Object.entries(extra).map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`).join('');
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${fields}<RequestId>${requestId}</RequestId><HostId>${this.hostId}</HostId></Error>`;
    res.writeHead(status, { ...this.headers({ 'x-amz-request-id': requestId }), 'Content-Type': 'application/xml', ...(head ? {} : { 'Content-Length': Buffer.byteLength(body) }) });
    res.end(head ? undefined : body);
  }

  /** Bucket and key from path-style or virtual-hosted addressing. */
  private target(req: IncomingMessage, url: URL): { bucket: string; key: string } {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const path = url.pathname.slice(1);
    const hostBucket = /^(.+)\.(127\.0\.0\.1|localhost)$/.exec(host)?.[1];
    if (hostBucket) return { bucket: hostBucket, key: decodeURIComponent(path) };
    const slash = path.indexOf('/');
    return slash < 0 ? { bucket: decodeURIComponent(path), key: '' } : { bucket: decodeURIComponent(path.slice(0, slash)), key: decodeURIComponent(path.slice(slash + 1)) };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const head = method === 'HEAD';
    const { bucket, key } = this.target(req, url);
    const operation = key === '' ? (url.searchParams.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects') : head ? 'HeadObject' : 'GetObject';
    const fault = this.faults.onRequest(operation);
    if (fault === 'refuse') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') return;
    req.resume(); // bodies of GETs are empty; drain whatever came
    if (fault === 'throttle') return this.error(res, 503, 'SlowDown', 'Please reduce your request rate.', head);
    if (fault === 'forbidden') return this.error(res, 403, 'AccessDenied', 'Access Denied', head);
    if (fault === 'server-error') return this.error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.', head);
    if (method !== 'GET' && method !== 'HEAD') return this.error(res, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', head, { Method: method, ResourceType: 'OBJECT' });
    const objects = this.buckets.get(bucket);
    if (!bucket || !objects) return this.error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist', head, { BucketName: bucket });
    if (this.denied.has(bucket)) return this.error(res, 403, 'AccessDenied', 'Access Denied', head);
    if (key === '') return this.list(res, bucket, objects, url.searchParams, fault === 'malformed');
    const o = objects.get(key);
    if (!o) return this.error(res, 404, 'NoSuchKey', 'The specified key does not exist.', head, { Key: key });
    this.object(req, res, o, head, fault === 'malformed');
  }

  private list(res: ServerResponse, bucket: string, objects: Map<string, StoredObject>, q: URLSearchParams, malformed: boolean): void {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const startAfter = q.get('start-after') ?? '';
    const urlEncoding = q.get('encoding-type') === 'url';
    const rawMax = q.get('max-keys');
    const asked = rawMax === null ? MAX_KEYS : Number(rawMax);
    if (!Number.isInteger(asked) || asked < 0) return this.error(res, 400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range', false, { ArgumentName: 'max-keys', ArgumentValue: String(rawMax) });
    const max = Math.min(asked, this.maxKeysCap);
    const token = q.get('continuation-token');
    let after = startAfter;
    if (token !== null) {
      let decoded: unknown;
      try {
        decoded = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
      } catch {
        decoded = undefined;
      }
      const d = decoded as { b?: unknown; k?: unknown } | undefined;
      if (!d || d.b !== bucket || typeof d.k !== 'string') {
        return this.error(res, 400, 'InvalidArgument', 'The continuation token provided is incorrect', false, { ArgumentName: 'continuation-token' });
      }
      if (byUtf8(d.k, after) > 0) after = d.k;
    }
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && (after === '' || byUtf8(k, after) > 0)).sort(byUtf8);
    // With a delimiter, keys sharing a prefix up to it roll up into one CommonPrefixes entry (counted once).
    const entries: ({ kind: 'key'; key: string } | { kind: 'prefix'; prefix: string; last: string })[] = [];
    for (const k of keys) {
      const rest = k.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut >= 0) {
        const p = prefix + rest.slice(0, cut + delimiter.length);
        const prev = entries[entries.length - 1];
        if (prev?.kind === 'prefix' && prev.prefix === p) prev.last = k;
        else entries.push({ kind: 'prefix', prefix: p, last: k });
      } else entries.push({ kind: 'key', key: k });
    }
    const page = entries.slice(0, max);
    const truncated = entries.length > max;
    const lastKey = page.length ? (page[page.length - 1].kind === 'key' ? (page[page.length - 1] as { key: string }).key : (page[page.length - 1] as { last: string }).last) : after;
    const enc = (s: string) => xmlEscape(urlEncoding ? urlEncodeKey(s) : s);
    const parts = [
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="${NS}">`,
      `<Name>${xmlEscape(bucket)}</Name>`,
      `<Prefix>${enc(prefix)}</Prefix>`,
      ...(startAfter ? [`<StartAfter>${enc(startAfter)}</StartAfter>`] : []),
      ...(token !== null ? [`<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`] : []),
      `<KeyCount>${page.length}</KeyCount>`,
      `<MaxKeys>${asked}</MaxKeys>`,
      ...(delimiter ? [`<Delimiter>${enc(delimiter)}</Delimiter>`] : []),
      ...(urlEncoding ? ['<EncodingType>url</EncodingType>'] : []),
      `<IsTruncated>${truncated}</IsTruncated>`,
      ...(truncated ? [`<NextContinuationToken>${Buffer.from(JSON.stringify({ b: bucket, k: lastKey, n: randomUUID().slice(0, 8) })).toString('base64')}</NextContinuationToken>`] : []),
    ];
    for (const e of page) {
      if (e.kind === 'prefix') {
        parts.push(`<CommonPrefixes><Prefix>${enc(e.prefix)}</Prefix></CommonPrefixes>`);
        continue;
      }
      const o = objects.get(e.key) as StoredObject;
      parts.push(
        `<Contents><Key>${enc(o.key)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
    parts.push('</ListBucketResult>');
    let body = parts.join('');
    if (malformed) body = body.slice(0, Math.floor(body.length / 2));
    res.writeHead(200, { ...this.headers(), 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private object(req: IncomingMessage, res: ServerResponse, o: StoredObject, head: boolean, malformed: boolean): void {
    const size = o.body.length;
    const common = { ETag: o.etag, 'Last-Modified': o.lastModified.toUTCString(), 'Accept-Ranges': 'bytes', 'Content-Type': o.contentType };
    const range = req.headers.range;
    if (range !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] !== '' || m[2] !== '')) {
        let start: number;
        let end: number;
        if (m[1] === '') {
          const suffix = Number(m[2]);
          start = Math.max(0, size - suffix);
          end = size - 1;
        } else {
          start = Number(m[1]);
          end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
        }
        if (start >= size || start > end) {
          return this.error(res, 416, 'InvalidRange', 'The requested range is not satisfiable', head, { RangeRequested: range, ActualObjectSize: String(size) });
        }
        const part = o.body.subarray(start, end + 1);
        res.writeHead(206, { ...this.headers(), ...common, 'Content-Length': part.length, 'Content-Range': `bytes ${start}-${end}/${size}` });
        res.end(head ? undefined : part);
        return;
      }
      // A Range header S3 cannot parse is ignored: the whole object comes back.
    }
    res.writeHead(200, { ...this.headers(), ...common, 'Content-Length': size });
    if (head) return void res.end();
    if (malformed) {
      // The connection drops halfway through the body.
      res.write(o.body.subarray(0, Math.floor(size / 2)), () => res.destroy());
      return;
    }
    res.end(o.body);
  }
}
