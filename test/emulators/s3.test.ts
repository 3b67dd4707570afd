/**
 * The S3 emulator through the real @aws-sdk/client-s3: ListObjectsV2 pages, prefixes,
 * delimiters, hostile keys in XML, GetObject streams and ranges, and S3's errors as the SDK
 * surfaces them.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, NoSuchBucket, NoSuchKey, paginateListObjectsV2, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { S3Emulator, type RunningEmulator } from '../../src/sandbox/emulators';

let emu: S3Emulator;
let running: RunningEmulator;
let client: S3Client;

const client$ = (url: string, forcePathStyle = true) =>
  new S3Client({
    region: 'us-east-1',
    endpoint: url,
    forcePathStyle,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ requestTimeout: 5000, connectionTimeout: 2000, throwOnRequestTimeout: true }),
  });

const HOSTILE = 'model-archives/<script>&"quote"\'/ünï/model.tar.gz';

beforeEach(async () => {
  emu = new S3Emulator({ maxKeysCap: 3 });
  emu.createBucket('aegis-models');
  for (let i = 0; i < 7; i++) emu.putObject({ bucket: 'aegis-models', key: `model-archives/demo/run-${i}/model.tar.gz`, body: `weights ${i}`, lastModified: new Date('2026-11-20T10:00:00.123Z') });
  emu.putObject({ bucket: 'aegis-models', key: HOSTILE, body: 'x' });
  emu.putObject({ bucket: 'aegis-models', key: 'other/readme.txt', body: 'hello' });
  running = await emu.start();
  client = client$(running.url);
});

afterEach(async () => {
  client.destroy();
  await running.close();
});

test('ListObjectsV2 pages through a prefix with continuation tokens, at most max-keys (capped) per page', async () => {
  const keys: string[] = [];
  const pages: number[] = [];
  for await (const page of paginateListObjectsV2({ client, pageSize: 1000 }, { Bucket: 'aegis-models', Prefix: 'model-archives/' })) {
    pages.push(page.KeyCount ?? -1);
    for (const o of page.Contents ?? []) keys.push(o.Key as string);
  }
  expect(pages).toEqual([3, 3, 2]);
  expect(keys).toEqual([HOSTILE, ...Array.from({ length: 7 }, (_, i) => `model-archives/demo/run-${i}/model.tar.gz`)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  const first = await client.send(new ListObjectsV2Command({ Bucket: 'aegis-models', Prefix: 'model-archives/demo/', MaxKeys: 2 }));
  expect(first).toMatchObject({ IsTruncated: true, KeyCount: 2, MaxKeys: 2, Name: 'aegis-models', Prefix: 'model-archives/demo/' });
  expect(first.Contents?.[0]).toMatchObject({ Key: 'model-archives/demo/run-0/model.tar.gz', Size: 9, StorageClass: 'STANDARD', ETag: expect.stringMatching(/^"[0-9a-f]{32}"$/) });
  expect(first.Contents?.[0].LastModified?.toISOString()).toBe('2026-11-20T10:00:00.123Z');
  expect(first.NextContinuationToken).toBeTruthy();
});

test('a delimiter rolls keys up into common prefixes; start-after and encoding-type=url', async () => {
  const r = await client.send(new ListObjectsV2Command({ Bucket: 'aegis-models', Prefix: 'model-archives/demo/', Delimiter: '/' }));
  expect(r.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['model-archives/demo/run-0/', 'model-archives/demo/run-1/', 'model-archives/demo/run-2/']);
  expect(r.Contents ?? []).toEqual([]);
  const after = await client.send(new ListObjectsV2Command({ Bucket: 'aegis-models', StartAfter: 'model-archives/demo/run-6/model.tar.gz' }));
  expect(after.Contents?.map((o) => o.Key)).toEqual(['other/readme.txt']);
  const encoded = await client.send(new ListObjectsV2Command({ Bucket: 'aegis-models', Prefix: 'model-archives/<', EncodingType: 'url' }));
  expect(encoded.EncodingType).toBe('url');
  expect(decodeURIComponent(encoded.Contents?.[0].Key ?? '')).toBe(HOSTILE);
});

test('GetObject streams the body; a Range answers 206 with only those bytes; HeadObject has the size', async () => {
  const got = await client.send(new GetObjectCommand({ Bucket: 'aegis-models', Key: 'model-archives/demo/run-3/model.tar.gz' }));
  expect(await got.Body?.transformToString()).toBe('weights 3');
  expect(got.ContentLength).toBe(9);
  const hostile = await client.send(new GetObjectCommand({ Bucket: 'aegis-models', Key: HOSTILE }));
  expect(await hostile.Body?.transformToString()).toBe('x');
  const part = await client.send(new GetObjectCommand({ Bucket: 'aegis-models', Key: 'model-archives/demo/run-3/model.tar.gz', Range: 'bytes=0-3' }));
  expect(part.$metadata.httpStatusCode).toBe(206);
  expect(part.ContentRange).toBe('bytes 0-3/9');
  expect(await part.Body?.transformToString()).toBe('weig');
  const headRes = await client.send(new HeadObjectCommand({ Bucket: 'aegis-models', Key: 'other/readme.txt' }));
  expect(headRes.ContentLength).toBe(5);
});

test("S3's errors come through the SDK by name: NoSuchKey, NoSuchBucket, AccessDenied, InvalidRange", async () => {
  await expect(client.send(new GetObjectCommand({ Bucket: 'aegis-models', Key: 'nope' }))).rejects.toBeInstanceOf(NoSuchKey);
  await expect(client.send(new ListObjectsV2Command({ Bucket: 'nope' }))).rejects.toBeInstanceOf(NoSuchBucket);
  emu.denyBucket('aegis-models');
  const denied = await client.send(new ListObjectsV2Command({ Bucket: 'aegis-models' })).catch((e: unknown) => e);
  expect(denied).toBeInstanceOf(S3ServiceException);
  expect(denied).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
  emu.denyBucket('aegis-models', false);
  const range = await client.send(new GetObjectCommand({ Bucket: 'aegis-models', Key: 'other/readme.txt', Range: 'bytes=50-60' })).catch((e: unknown) => e);
  expect(range).toMatchObject({ name: 'InvalidRange', $metadata: { httpStatusCode: 416 } });
  const badToken = await client.send(new ListObjectsV2Command({ Bucket: 'aegis-models', ContinuationToken: 'bm90IG1pbmU=' })).catch((e: unknown) => e);
  expect(badToken).toMatchObject({ name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
});
