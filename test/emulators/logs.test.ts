import {
  DescribeLogGroupsCommand,
  FilterLogEventsCommand,
  GetLogEventsCommand,
  paginateDescribeLogGroups,
  paginateFilterLogEvents,
  paginateGetLogEvents,
  type CloudWatchLogsClient,
  type FilteredLogEvent,
  type FilterLogEventsCommandInput,
  type LogGroup,
  type OutputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { compileFilterPattern, FilterPatternError, LogsEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { httpStatus, logsClient, rejection } from './clients';

const T0 = Date.parse('2024-07-07T10:00:00Z');
const GROUP = '/aegis/prod/audit';

let emu: LogsEmulator;
let running: RunningEmulator;
let logs: CloudWatchLogsClient;

beforeEach(async () => {
  emu = new LogsEmulator();
  emu.createLogGroup(GROUP, T0 - 86_400_000);
  emu.createLogGroup('/aegis/prod/gateway', T0 - 86_400_000);
  emu.createLogGroup('/aegis/dev/audit', T0 - 86_400_000);
  // Two streams whose events interleave in time.
  emu.putEvents(GROUP, 'audit-a', [
    { timestamp: T0 + 0, message: JSON.stringify({ level: 'info', event: 'login', user: { id: 1 } }) },
    { timestamp: T0 + 2000, message: JSON.stringify({ level: 'error', event: 'key.rotate', status: 500 }) },
    { timestamp: T0 + 4000, message: 'ERROR plain text failure code=7' },
  ]);
  emu.putEvents(GROUP, 'audit-b', [
    { timestamp: T0 + 1000, message: JSON.stringify({ level: 'warn', event: 'login', path: '/api/v1/keys', user: { id: 2 } }) },
    { timestamp: T0 + 3000, message: 'WARN INTERNAL SERVER ERROR retrying' },
    { timestamp: T0 + 5000, message: JSON.stringify({ level: 'info', event: 'logout', detail: null, users: [{ email: 'a@x' }] }) },
  ]);
  running = await emu.start();
  logs = logsClient(running.url);
});

afterEach(async () => {
  logs.destroy();
  await running.close();
});

async function filterAll(input: Omit<FilterLogEventsCommandInput, 'logGroupName'> & { logGroupName?: string }): Promise<FilteredLogEvent[]> {
  const out: FilteredLogEvent[] = [];
  for await (const page of paginateFilterLogEvents({ client: logs }, { logGroupName: GROUP, ...input })) {
    out.push(...(page.events ?? []));
  }
  return out;
}

describe('FilterLogEvents', () => {
  it('interleaves streams sorted by timestamp, with millisecond numbers and string event ids', async () => {
    const events = await filterAll({});
    expect(events.map((e) => e.timestamp)).toEqual([0, 1000, 2000, 3000, 4000, 5000].map((d) => T0 + d));
    expect(events.map((e) => e.logStreamName)).toEqual(['audit-a', 'audit-b', 'audit-a', 'audit-b', 'audit-a', 'audit-b']);
    const first = events[0];
    expect(typeof first?.timestamp).toBe('number');
    expect(typeof first?.ingestionTime).toBe('number');
    expect(first?.eventId).toMatch(/^\d{56}$/);
  });

  it('answers searchedLogStreams: [] and, by default, ends on an empty page that follows a token', async () => {
    const first = await logs.send(new FilterLogEventsCommand({ logGroupName: GROUP }));
    expect(first.events).toHaveLength(6);
    expect(first.searchedLogStreams).toEqual([]);
    expect(first.nextToken).toBeDefined();
    const last = await logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, nextToken: first.nextToken }));
    expect(last.events).toEqual([]);
    expect(last.nextToken).toBeUndefined();
  });

  it('keeps paginating across empty pages that carry a nextToken', async () => {
    emu.setFilterPaging({ maxPageSize: 2, emptyPageEvery: 2, trailingEmptyPage: false });
    const pages: number[] = [];
    for await (const page of paginateFilterLogEvents({ client: logs }, { logGroupName: GROUP, limit: 100 })) {
      pages.push(page.events?.length ?? -1);
    }
    expect(pages).toEqual([2, 0, 2, 0, 2]);
    expect(emu.faults.requestCount('FilterLogEvents')).toBe(5);
  });

  it('honours limit per page and inclusive startTime/endTime in epoch milliseconds', async () => {
    emu.setFilterPaging({});
    const limited = await logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, limit: 4 }));
    expect(limited.events).toHaveLength(4);
    const window = await filterAll({ startTime: T0 + 1000, endTime: T0 + 3000 });
    expect(window.map((e) => e.timestamp)).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
  });

  it('selects streams by name or prefix, and refuses both at once', async () => {
    expect((await filterAll({ logStreamNames: ['audit-b'] })).every((e) => e.logStreamName === 'audit-b')).toBe(true);
    expect(await filterAll({ logStreamNamePrefix: 'audit-' })).toHaveLength(6);
    expect(await filterAll({ logStreamNamePrefix: 'other' })).toEqual([]);
    const err = await rejection(
      logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, logStreamNames: ['a'], logStreamNamePrefix: 'a' })),
    );
    expect(err.name).toBe('InvalidParameterException');
  });

  it('applies text and JSON filter patterns', async () => {
    const messages = async (filterPattern: string): Promise<number[]> =>
      (await filterAll({ filterPattern })).map((e) => (e.timestamp ?? 0) - T0);
    expect(await messages('ERROR')).toEqual([3000, 4000]);
    expect(await messages('"INTERNAL SERVER ERROR"')).toEqual([3000]);
    expect(await messages('?failure ?retrying')).toEqual([3000, 4000]);
    expect(await messages('ERROR -WARN')).toEqual([4000]);
    expect(await messages('{ $.level = "error" }')).toEqual([2000]);
    expect(await messages('{ $.path = "/api/*" }')).toEqual([1000]);
    expect(await messages('{ $.status >= 500 }')).toEqual([2000]);
    expect(await messages('{ ($.event = "login") && ($.user.id = 2) }')).toEqual([1000]);
    expect(await messages('{ $.level = "error" || ($.level = "warn" && $.user.id != 1) }')).toEqual([1000, 2000]);
    expect(await messages('{ $.users[0].email = "a@x" }')).toEqual([5000]);
    expect(await messages('{ $.detail IS NULL }')).toEqual([5000]);
    expect(await messages('{ $.level != "info" }')).toEqual([1000, 2000]);
  });

  it('rejects a broken filter pattern with InvalidParameterException', async () => {
    const err = await rejection(logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, filterPattern: '{ $.a = ' })));
    expect(err.name).toBe('InvalidParameterException');
    expect(err.$fault).toBe('client');
  });

  it('fails with ResourceNotFoundException (400) for an unknown group', async () => {
    const err = await rejection(logs.send(new FilterLogEventsCommand({ logGroupName: '/nope' })));
    expect(err.name).toBe('ResourceNotFoundException');
    expect(err.message).toBe('The specified log group does not exist.');
    expect(httpStatus(err)).toBe(400);
  });

  it('accepts logGroupIdentifier (name or ARN without :*), but not together with logGroupName', async () => {
    const byArn = await filterAll({ logGroupName: undefined, logGroupIdentifier: `arn:aws:logs:us-east-1:123456789012:log-group:${GROUP}` });
    expect(byArn).toHaveLength(6);
    const both = await rejection(
      logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, logGroupIdentifier: GROUP })),
    );
    expect(both.name).toBe('InvalidParameterException');
    const star = await rejection(
      logs.send(
        new FilterLogEventsCommand({ logGroupIdentifier: `arn:aws:logs:us-east-1:123456789012:log-group:${GROUP}:*` }),
      ),
    );
    expect(star.name).toBe('InvalidParameterException');
  });

  it('rejects limit outside 1..10000', async () => {
    for (const limit of [0, 10001]) {
      const err = await rejection(logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, limit })));
      expect(err.name).toBe('ValidationException');
      expect(err.message).toContain("'limit'");
    }
  });
});

describe('filter pattern compiler', () => {
  it('treats an empty pattern as match-all and rejects space-delimited patterns it does not implement', () => {
    expect(compileFilterPattern('')('anything')).toBe(true);
    expect(compileFilterPattern(undefined)('')).toBe(true);
    expect(() => compileFilterPattern('[ip, user]')).toThrow(FilterPatternError);
  });

  it('never matches non-JSON events with a JSON pattern, and compares numbers numerically', () => {
    const p = compileFilterPattern('{ $.n < 10 }');
    expect(p('n < 10')).toBe(false);
    expect(p('{"n": 9}')).toBe(true);
    expect(p('{"n": 10}')).toBe(false);
    expect(p('{"n": "9"}')).toBe(false);
    expect(compileFilterPattern('{ $.x NOT EXISTS }')('{"y":1}')).toBe(true);
    expect(compileFilterPattern('{ $.ok IS TRUE }')('{"ok":true}')).toBe(true);
    expect(compileFilterPattern('%ERR[O]R%')('an ERROR')).toBe(true);
  });
});

describe('DescribeLogGroups', () => {
  it('lists groups sorted by name, arn with :* and logGroupArn without, across pages', async () => {
    const groups: LogGroup[] = [];
    for await (const page of paginateDescribeLogGroups({ client: logs }, { limit: 1 })) groups.push(...(page.logGroups ?? []));
    expect(groups.map((g) => g.logGroupName)).toEqual(['/aegis/dev/audit', '/aegis/prod/audit', '/aegis/prod/gateway']);
    const audit = groups[1];
    expect(audit?.arn).toBe(`arn:aws:logs:us-east-1:123456789012:log-group:${GROUP}:*`);
    expect(audit?.logGroupArn).toBe(`arn:aws:logs:us-east-1:123456789012:log-group:${GROUP}`);
    expect(audit?.creationTime).toBe(T0 - 86_400_000);
    const prefixed = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: '/aegis/prod/' }));
    expect(prefixed.logGroups?.map((g) => g.logGroupName)).toEqual(['/aegis/prod/audit', '/aegis/prod/gateway']);
    const err = await rejection(logs.send(new DescribeLogGroupsCommand({ limit: 51 })));
    expect(err.name).toBe('ValidationException');
  });
});

describe('GetLogEvents', () => {
  it('returns the same forward token at the end of the stream, so stopOnSameToken ends pagination', async () => {
    const events: OutputLogEvent[] = [];
    let pages = 0;
    for await (const page of paginateGetLogEvents(
      { client: logs, stopOnSameToken: true },
      { logGroupName: GROUP, logStreamName: 'audit-a', startFromHead: true, limit: 2 },
    )) {
      pages += 1;
      events.push(...(page.events ?? []));
      if (pages > 10) throw new Error('pagination did not stop');
    }
    expect(events.map((e) => e.timestamp)).toEqual([T0, T0 + 2000, T0 + 4000]);
    expect(events[0]).not.toHaveProperty('logStreamName');
    const end = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: 'audit-a', startFromHead: true }),
    );
    const again = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: 'audit-a', nextToken: end.nextForwardToken }),
    );
    expect(again.events).toEqual([]);
    expect(again.nextForwardToken).toBe(end.nextForwardToken);
    expect(end.nextForwardToken).toMatch(/^f\/\d{56}$/);
  });

  it('starts from the newest events when startFromHead is false', async () => {
    const newest = await logs.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: 'audit-b', limit: 1 }));
    expect(newest.events?.map((e) => e.timestamp)).toEqual([T0 + 5000]);
    const older = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: 'audit-b', limit: 5, nextToken: newest.nextBackwardToken }),
    );
    expect(older.events?.map((e) => e.timestamp)).toEqual([T0 + 1000, T0 + 3000]);
    const missing = await rejection(logs.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: 'nope' })));
    expect(missing.name).toBe('ResourceNotFoundException');
  });
});
