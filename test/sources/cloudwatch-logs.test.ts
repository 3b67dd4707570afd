/**
 * The CloudWatch Logs source against the loopback emulator, through the real
 * @aws-sdk/client-cloudwatch-logs: a time window in epoch milliseconds, the event filter
 * pushed down as a JSON filter pattern, small and empty pages, non-JSON lines ignored and
 * counted, and files + CloudWatch combined per service.
 */
import { appendFileSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogsEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { logsSchema } from '../../src/config/schema';
import { CloudWatchLogSource, CombinedLogSource, eventFilterPattern } from '../../src/sources/cloudwatch-logs';
import { FileLogSource } from '../../src/sources/log-files';
import type { LogEvent } from '../../src/core/sources';
import { AuditError } from '../../src/core/errors';

process.env.AEGIS_TEST_AWS_KEY_ID = 'AKIDLOGSTEST';
process.env.AEGIS_TEST_AWS_SECRET = 'logs-test-secret-access-key';

const emu = new LogsEmulator({ filterPaging: { maxPageSize: 4, emptyPageEvery: 3, trailingEmptyPage: true } });
let running: RunningEmulator;
const sources: CloudWatchLogSource[] = [];
const T0 = Date.UTC(2026, 10, 22, 10, 0, 0);
const MIN = 60_000;

function line(ts: number, fields: Record<string, unknown>): string {
  return JSON.stringify({ ts: new Date(ts).toISOString(), ...fields });
}

function source(over: Record<string, unknown> = {}): CloudWatchLogSource {
  const cfg = logsSchema.parse({
    cloudwatch: {
      region: 'us-east-1',
      endpoint: running.url,
      credentials_env: { access_key_id: 'AEGIS_TEST_AWS_KEY_ID', secret_access_key: 'AEGIS_TEST_AWS_SECRET' },
      groups: { audit: '/aegis/test/audit', gateway: '/aegis/test/gateway', missing: '/aegis/test/missing', live: '/aegis/test/live' },
      max_attempts: 1,
      timeout: 10_000,
      ...over,
    },
    window: '24h',
  });
  const s = new CloudWatchLogSource(cfg.cloudwatch!, cfg.window);
  sources.push(s);
  return s;
}

async function collect(it: AsyncIterable<LogEvent>): Promise<LogEvent[]> {
  const out: LogEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

beforeAll(async () => {
  running = await emu.start();
  emu.createLogGroup('/aegis/test/audit');
  emu.createLogGroup('/aegis/test/gateway');
  emu.putEvents('/aegis/test/audit', 'audit-1', [
    { timestamp: T0, message: line(T0, { service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' }) },
    { timestamp: T0 + 1, message: 'plain text startup banner' },
    { timestamp: T0 + 2, message: line(T0 + 2, { service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key: 'root', source: 'file' }) },
    { timestamp: T0 + 3, message: line(T0 + 3, { service: 'audit', event: 'request', path: '/v1/receipts' }) },
  ]);
  emu.putEvents('/aegis/test/audit', 'audit-2', [
    { timestamp: T0 + 5 * MIN, message: line(T0 + 5 * MIN, { service: 'audit', instance: 'audit-2', event: 'signing_key_loaded', key: 'receipt', source: 'generated' }) },
  ]);
  // 30 auth failures, one a minute, over two streams.
  for (let i = 0; i < 30; i++) {
    const ts = T0 + i * MIN;
    emu.putEvents('/aegis/test/gateway', `gw-${i % 2}`, [
      { timestamp: ts, message: line(ts, { service: 'gateway', event: 'auth_failure', reason: 'invalid_token', client: `203.0.113.${i % 3}` }) },
      { timestamp: ts + 1, message: line(ts + 1, { service: 'gateway', event: 'request', status: 200 }) },
    ]);
  }
});

afterAll(async () => {
  for (const s of sources) s.close();
  await emu.close();
});

beforeEach(async () => {
  await emu.faults.clear();
  emu.faults.resetCounts();
});

describe('CloudWatch Logs source against the emulator', () => {
  test('the event filter is pushed down; events come back parsed, oldest first, with their origin', async () => {
    const src = source();
    const evs = await collect(src.events('audit', { since: new Date(T0 - MIN), event: 'signing_key_loaded' }));
    expect(evs.map((e) => [e.fields.instance, e.fields.key, e.fields.source])).toEqual([
      ['audit-1', 'receipt', 'env'],
      ['audit-1', 'root', 'file'],
      ['audit-2', 'receipt', 'generated'],
    ]);
    expect(evs[0].ts.getTime()).toBe(T0);
    expect(evs[0].origin).toBe('cloudwatch:/aegis/test/audit:audit-1');
    expect(evs[0].service).toBe('audit');
    // Only the three matching lines crossed the wire.
    expect(src.stats()).toEqual({ linesRead: 3, linesIgnored: 0 });
    expect(eventFilterPattern('signing_key_loaded')).toBe('{ $.event = "signing_key_loaded" }');
  });

  test('without an event filter, non-JSON lines are ignored and counted', async () => {
    const src = source();
    const evs = await collect(src.events('audit', { since: new Date(T0 - MIN), until: new Date(T0 + MIN) }));
    expect(evs).toHaveLength(3);
    expect(src.stats()).toEqual({ linesRead: 4, linesIgnored: 1 });
  });

  test('the window is sent in epoch milliseconds and bounds the events (inclusive)', async () => {
    const src = source();
    const evs = await collect(src.events('gateway', { since: new Date(T0 + 10 * MIN), until: new Date(T0 + 19 * MIN), event: 'auth_failure' }));
    expect(evs).toHaveLength(10);
    expect(evs[0].ts.getTime()).toBe(T0 + 10 * MIN);
    expect(evs[9].ts.getTime()).toBe(T0 + 19 * MIN);
  });

  test('all pages are read: small pages, empty pages with a token, and an empty last page', async () => {
    const src = source({ page_size: 10 });
    const evs = await collect(src.events('gateway', { since: new Date(T0 - MIN), event: 'auth_failure' }));
    expect(evs).toHaveLength(30);
    expect(new Set(evs.map((e) => e.fields.client))).toEqual(new Set(['203.0.113.0', '203.0.113.1', '203.0.113.2']));
    // 30 events in pages of at most 4, every third page empty, then the trailing empty page.
    expect(emu.faults.requestCount('FilterLogEvents')).toBeGreaterThanOrEqual(12);
  });

  test('a service without a configured group yields nothing', async () => {
    expect(await collect(source().events('api', { since: new Date(0) }))).toEqual([]);
    expect(source().services()).toEqual(['audit', 'gateway', 'missing', 'live']);
  });

  test('a configured group that does not exist is a coded error naming it', async () => {
    await expect(collect(source().events('missing', { since: new Date(0) }))).rejects.toThrow(
      /^logs: reading CloudWatch log group \/aegis\/test\/missing: .*log group does not exist/,
    );
  });

  test('a malformed response is an error naming the fault', async () => {
    await emu.faults.inject('malformed');
    const err = await collect(source().events('audit', { since: new Date(0) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).reason).toBe('malformed_response');
    expect((err as AuditError).message).toMatch(/^logs: reading CloudWatch log group \/aegis\/test\/audit: malformed response/);
  });

  test('files and CloudWatch combine per service, merged in time order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-combined-'));
    mkdirSync(join(dir, 'audit'));
    writeFileSync(
      join(dir, 'audit', 'a.jsonl'),
      line(T0 + 1000, { service: 'audit', instance: 'audit-9', event: 'signing_key_loaded', key: 'receipt', source: 'env' }) + '\n',
    );
    const combined = new CombinedLogSource([new FileLogSource({ audit: join(dir, 'audit', '*.jsonl'), identity: join(dir, 'none', '*.jsonl') }, 1000), source()], 1000);
    expect(combined.services().sort()).toEqual(['audit', 'gateway', 'identity', 'live', 'missing']);
    const evs = await collect(combined.events('audit', { since: new Date(T0 - MIN), event: 'signing_key_loaded' }));
    expect(evs.map((e) => e.fields.instance)).toEqual(['audit-1', 'audit-1', 'audit-9', 'audit-2']);
    expect(evs[2].origin).toMatch(/^file:/);
  });
});

test('a read cut short by the check timeout (aborted signal) is an error, not a short window', async () => {
  await expect(collect(source().events('gateway', { since: new Date(T0 - MIN), event: 'auth_failure', signal: AbortSignal.abort() }))).rejects.toMatchObject({
    code: 'AUDIT_ERR_TIMEOUT',
    message: expect.stringMatching(/^logs: reading CloudWatch log group \/aegis\/test\/gateway: stopped/),
  });
});

describe('reading a long lookback, and resuming', () => {
  const DAY = 86_400_000;
  const startPattern = '{ $.event = "signing_key_loaded" }';

  test('a 30-day read is paged by time: day-long slices in epoch milliseconds, inclusive, contiguous, the last one open', async () => {
    emu.filterRequests.length = 0;
    const since = T0 - 29 * DAY - 5;
    const evs = await collect(source().events('audit', { since: new Date(since), event: 'signing_key_loaded' }));
    expect(evs).toHaveLength(3);
    const firsts = emu.filterRequests.filter((q) => q.page === 0);
    expect(firsts[0].startTime).toBe(since);
    expect(firsts.every((q) => q.filterPattern === startPattern)).toBe(true);
    for (let i = 1; i < firsts.length; i++) expect(firsts[i].startTime).toBe(firsts[i - 1].endTime! + 1);
    for (const q of firsts.slice(0, -1)) expect(q.endTime! - q.startTime!).toBe(DAY - 1);
    expect(firsts.at(-1)!.endTime).toBeUndefined();
    expect(firsts.at(-1)!.startTime).toBeGreaterThan(Date.now() - DAY - 60_000);
  });

  test('a bounded read stays within its bounds; a read from the epoch is not thousands of calls', async () => {
    emu.filterRequests.length = 0;
    await collect(source().events('gateway', { since: new Date(0), until: new Date(T0 + 10 * MIN), event: 'auth_failure' }));
    const firsts = emu.filterRequests.filter((q) => q.page === 0);
    expect(firsts.length).toBeLessThanOrEqual(60);
    expect(firsts.at(-1)!.endTime).toBe(T0 + 10 * MIN);
  });

  test('a resumed read starts where the last read began, less the ingestion delay: late events within it are read, older ones are not read again', async () => {
    const group = '/aegis/test/live';
    emu.createLogGroup(group);
    const now = Date.now();
    const put = (ts: number, instance: string) =>
      emu.putEvents(group, instance, [{ timestamp: ts, message: line(ts, { service: 'live', instance, event: 'signing_key_loaded', key: 'receipt', source: 'env' }) }]);
    put(now - 2 * DAY, 'before');
    const src = source({ ingestion_delay: '10m' });
    const first = src.events('live', { since: new Date(now - 30 * DAY), event: 'signing_key_loaded' });
    expect((await collect(first)).map((e) => e.fields.instance)).toEqual(['before']);
    const cursor = first.cursor();
    expect(cursor.location).toMatch(/^cloudwatch:us-east-1@http:\/\/127\.0\.0\.1:\d+:\/aegis\/test\/live$/);
    const readAt = (cursor.at as { t: number }).t;
    expect(readAt).toBeGreaterThanOrEqual(now);

    put(readAt - 3 * 60_000, 'late-within-delay');
    put(readAt - 60 * 60_000, 'late-beyond-delay');
    put(readAt + 1000, 'after');
    emu.filterRequests.length = 0;
    const second = src.events('live', { since: new Date(now - 30 * DAY), event: 'signing_key_loaded', after: cursor });
    expect((await collect(second)).map((e) => e.fields.instance)).toEqual(['late-within-delay', 'after']);
    expect(emu.filterRequests.filter((q) => q.page === 0).map((q) => q.startTime)).toEqual([readAt - 10 * 60_000]);

    // A longer ingestion_delay reaches further back (and re-reads more).
    const patient = source({ ingestion_delay: '2h' });
    const third = patient.events('live', { since: new Date(now - 30 * DAY), event: 'signing_key_loaded', after: cursor });
    expect((await collect(third)).map((e) => e.fields.instance)).toEqual(['late-beyond-delay', 'late-within-delay', 'after']);
  });

  test('files and CloudWatch combined resume each from its own position', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-combined-resume-'));
    writeFileSync(join(dir, 'a.jsonl'), line(Date.now() - DAY, { service: 'live', instance: 'from-file', event: 'signing_key_loaded' }) + '\n');
    const combined = new CombinedLogSource([new FileLogSource({ live: join(dir, '*.jsonl') }, 1000), source()], 1000);
    const q = { since: new Date(Date.now() - 30 * DAY), event: 'signing_key_loaded' };
    const first = combined.events('live', q);
    const got = (await collect(first)).map((e) => e.fields.instance);
    expect(got).toContain('from-file');
    expect(combined.location('live')).toMatch(/^files:.* \+ cloudwatch:/);
    appendFileSync(join(dir, 'a.jsonl'), line(Date.now(), { service: 'live', instance: 'new-in-file', event: 'signing_key_loaded' }) + '\n');
    const again = await collect(combined.events('live', { ...q, after: first.cursor() }));
    expect(again.map((e) => e.fields.instance)).toContain('new-in-file');
    expect(again.map((e) => e.fields.instance)).not.toContain('from-file');
  });
});

describe('raw streams (every event of a group, resumable)', () => {
  const group = '/aegis/test/raw';
  const read = async (s: CloudWatchLogSource, from?: import('../../src/core/sources').RawLogPosition) => {
    const [stream] = await s.rawStreams('raw');
    const chunks = [];
    for await (const c of stream.read(from, { since: new Date(T0 - 60 * MIN) })) chunks.push(c);
    return { stream, chunks };
  };

  test('reads every message, JSON or not, with where each event starts, and resumes after the last event read', async () => {
    emu.createLogGroup(group);
    emu.putEvents(group, 'gw-1', [
      { timestamp: T0, message: 'plain text line' },
      { timestamp: T0 + 1, message: line(T0 + 1, { event: 'x' }) },
      { timestamp: T0 + 1, message: 'second event at the same millisecond' },
      { timestamp: T0 + 2, message: 'multi\nline event' },
      { timestamp: T0 - 120 * MIN, message: 'before the window' },
    ]);
    const s = source({ groups: { raw: group }, ingestion_delay: 0 });
    const { stream, chunks } = await read(s);
    expect(stream).toMatchObject({ kind: 'cloudwatch', name: group, identity: `cloudwatch:us-east-1@${running.url}:${group}` });
    const text = Buffer.concat(chunks.map((c) => c.data)).toString('utf8');
    expect(text).toBe(`plain text line\n${line(T0 + 1, { event: 'x' })}\nsecond event at the same millisecond\nmulti\nline event\n`);
    const marks = chunks.flatMap((c) => c.events ?? []);
    expect(marks.map((m) => [m.ts - T0, m.stream])).toEqual([[0, 'gw-1'], [1, 'gw-1'], [1, 'gw-1'], [2, 'gw-1']]);
    const last = chunks[chunks.length - 1].next;
    expect(last.ts).toBe(T0 + 2);

    emu.putEvents(group, 'gw-2', [{ timestamp: T0 + 2, message: 'late at the same ms' }, { timestamp: T0 + 5, message: 'new' }]);
    const again = await read(s, last);
    expect(Buffer.concat(again.chunks.map((c) => c.data)).toString('utf8')).toBe('late at the same ms\nnew\n');
    const after = again.chunks[again.chunks.length - 1].next;
    expect((await read(s, after)).chunks).toEqual([]);
    // With an ingestion delay, a resumed read starts that much earlier: late events are not missed.
    const delayed = source({ groups: { raw: group }, ingestion_delay: 3 });
    const margin = await read(delayed, after);
    expect(Buffer.concat(margin.chunks.map((c) => c.data)).toString('utf8')).toBe('multi\nline event\nlate at the same ms\n');
  });
});
