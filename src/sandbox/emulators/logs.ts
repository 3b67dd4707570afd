/**
 * CloudWatch Logs emulator (wire-protocols.md §A, §C): FilterLogEvents, DescribeLogGroups and
 * GetLogEvents on the AWS JSON 1.1 wire. All times are epoch milliseconds (Logs `long`s, not
 * Smithy timestamps).
 *
 * FilterLogEvents pages like the real service when configured to: smaller pages than asked
 * for, empty pages that still carry a nextToken, and an empty last page. By default the last
 * page with events still carries a token and the following page is empty, as the real service
 * often does, so clients that stop on an empty page are caught.
 */
import { AwsServiceError, createAwsJsonHandler, type Input, type JsonObject } from './aws-json';
import { FaultController } from './faults';
import { LoopbackListener, type RunningEmulator, type StartOptions } from './listener';
import { compileFilterPattern, FilterPatternError, type MessagePredicate } from './logs-filter-pattern';
import { checkPolicy, decodeToken, encodeToken, pageOf, type Cursor, type PagingPolicy } from './paging';

export interface SeedLogEvent {
  /** Epoch milliseconds. */
  timestamp: number;
  message: string;
  /** Epoch milliseconds; default timestamp + 200. */
  ingestionTime?: number;
}

export interface LogsEmulatorOptions {
  region?: string;
  accountId?: string;
  /** FilterLogEvents paging; default `{ trailingEmptyPage: true }`. */
  filterPaging?: PagingPolicy;
}

interface StoredEvent {
  timestamp: number;
  ingestionTime: number;
  message: string;
  eventId: string;
  /** Arrival order, the last sort key (stands in for the PutLogEvents request id). */
  seq: number;
}

interface StoredStream {
  name: string;
  creationTime: number;
  /** Kept sorted by (timestamp, seq). */
  events: StoredEvent[];
}

interface StoredGroup {
  name: string;
  creationTime: number;
  streams: Map<string, StoredStream>;
}

const GROUP_NAME = /^[.\-_/#A-Za-z0-9]+$/;

export class LogsEmulator {
  readonly faults = new FaultController();
  readonly region: string;
  readonly accountId: string;
  private readonly groups = new Map<string, StoredGroup>();
  private filterPaging: PagingPolicy;
  private seq = 0;
  /** The time range of recent FilterLogEvents calls (the last 1000), for tests of how clients page by time. */
  readonly filterRequests: { startTime?: number; endTime?: number; filterPattern?: string; page: number }[] = [];
  private readonly listener: LoopbackListener;

  constructor(options: LogsEmulatorOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.filterPaging = checkPolicy(options.filterPaging ?? { trailingEmptyPage: true });
    const handler = createAwsJsonHandler(
      {
        targetPrefix: 'Logs_20140328',
        signingName: 'logs',
        region: this.region,
        accountId: this.accountId,
        resourceArn: (_op, input) => {
          try {
            const name = input.string('logGroupName');
            if (name) return `${this.groupArn(name)}:*`;
          } catch {
            // fall through to the account-wide resource
          }
          return `arn:aws:logs:${this.region}:${this.accountId}:log-group::log-stream:`;
        },
        operations: {
          FilterLogEvents: (i) => this.filterLogEvents(i),
          DescribeLogGroups: (i) => this.describeLogGroups(i),
          GetLogEvents: (i) => this.getLogEvents(i),
        },
      },
      this.faults,
    );
    this.listener = new LoopbackListener('CloudWatch Logs', handler, this.faults);
  }

  start(options: StartOptions = {}): Promise<RunningEmulator> {
    return this.listener.start(options);
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  /** Page size, empty pages and the trailing empty page of FilterLogEvents. */
  setFilterPaging(policy: PagingPolicy): void {
    this.filterPaging = checkPolicy(policy);
  }

  // ---- seeding -------------------------------------------------------------------------

  createLogGroup(name: string, creationTime = Date.now()): void {
    if (!GROUP_NAME.test(name) || name.length > 512) throw new Error(`invalid log group name: ${name}`);
    if (!this.groups.has(name)) this.groups.set(name, { name, creationTime, streams: new Map() });
  }

  /** Append events to a stream (created on first use) of an existing group. */
  putEvents(group: string, stream: string, events: readonly SeedLogEvent[]): void {
    const g = this.groups.get(group);
    if (!g) throw new Error(`log group ${group} does not exist; call createLogGroup first`);
    let s = g.streams.get(stream);
    if (!s) {
      s = { name: stream, creationTime: events[0]?.timestamp ?? Date.now(), events: [] };
      g.streams.set(stream, s);
    }
    const before = s.events.length;
    for (const e of events) {
      if (!Number.isInteger(e.timestamp)) throw new Error(`event timestamp must be epoch milliseconds: ${e.timestamp}`);
      this.seq += 1;
      s.events.push({
        timestamp: e.timestamp,
        ingestionTime: e.ingestionTime ?? e.timestamp + 200,
        message: e.message,
        eventId: eventId(e.timestamp, this.seq),
        seq: this.seq,
      });
    }
    // Appends in time order (the usual case, and big seeds) need no sort.
    let sorted = true;
    for (let i = Math.max(1, before); i < s.events.length && sorted; i++) sorted = byTime(s.events[i - 1], s.events[i]) <= 0;
    if (!sorted) s.events.sort(byTime);
  }

  // ---- helpers --------------------------------------------------------------------------

  private groupArn(name: string): string {
    return `arn:aws:logs:${this.region}:${this.accountId}:log-group:${name}`;
  }

  /** The group named by exactly one of logGroupName / logGroupIdentifier (a name or an ARN without `:*`). */
  private group(input: Input): StoredGroup {
    const name = input.string('logGroupName', { min: 1, max: 512 });
    const identifier = input.string('logGroupIdentifier', { min: 1, max: 2048 });
    if ((name === undefined) === (identifier === undefined)) {
      throw invalidParameter('Exactly one of logGroupName or logGroupIdentifier must be specified.');
    }
    let groupName = name ?? '';
    if (identifier !== undefined) {
      if (identifier.startsWith('arn:')) {
        if (identifier.endsWith(':*')) throw invalidParameter('The logGroupIdentifier must not end with ":*".');
        const marker = ':log-group:';
        const at = identifier.indexOf(marker);
        if (at < 0) throw invalidParameter(`Invalid log group ARN: ${identifier}`);
        groupName = identifier.slice(at + marker.length);
      } else groupName = identifier;
    }
    const g = this.groups.get(groupName);
    if (!g) throw new AwsServiceError('ResourceNotFoundException', 'The specified log group does not exist.');
    return g;
  }

  private token(op: string, input: Input): ReturnType<typeof decodeToken> {
    const token = input.string('nextToken', { min: 1 });
    if (token === undefined) return undefined;
    const cursor = decodeToken(op, token);
    if (!cursor) throw invalidParameter('The specified nextToken is not valid.');
    return cursor;
  }

  // ---- operations -----------------------------------------------------------------------

  private filterLogEvents(input: Input): JsonObject {
    const group = this.group(input);
    const names = input.stringList('logStreamNames', { min: 1, max: 100 });
    const prefix = input.string('logStreamNamePrefix', { min: 1, max: 512 });
    if (names && prefix !== undefined) {
      throw invalidParameter('logStreamNames and logStreamNamePrefix cannot both be specified.');
    }
    const start = input.integer('startTime', { min: 0 });
    const end = input.integer('endTime', { min: 0 });
    const limit = input.integer('limit', { min: 1, max: 10000 }) ?? 10000;
    const pattern = input.string('filterPattern', { max: 1024 });
    const cursor = this.token('FilterLogEvents', input);
    let matches: MessagePredicate;
    try {
      matches = compileFilterPattern(pattern);
    } catch (err) {
      if (err instanceof FilterPatternError) throw invalidParameter(`Invalid filter pattern: ${err.message}`);
      throw err;
    }
    this.filterRequests.push({ startTime: start, endTime: end, filterPattern: pattern, page: cursor?.page ?? 0 });
    if (this.filterRequests.length > 1000) this.filterRequests.splice(0, this.filterRequests.length - 1000);
    const page = this.filterPage(group, { names, prefix, start, end, matches, limit, cursor });
    const body: JsonObject = {
      events: page.items.map((e) => ({
        logStreamName: e.stream,
        timestamp: e.timestamp,
        message: e.message,
        ingestionTime: e.ingestionTime,
        eventId: e.eventId,
      })),
      // Always empty on the real service since 2020-05.
      searchedLogStreams: [],
    };
    if (page.next) body.nextToken = encodeToken('FilterLogEvents', page.next);
    return body;
  }

  /**
   * One FilterLogEvents page, found by position: each stream is entered by binary search at
   * the later of startTime and the last event served, and the streams are merged from there
   * until the page is full (plus one event, to know whether more follow). A page costs the
   * events it scans, not the group's size, so a 30-day read in slices stays linear.
   */
  private filterPage(
    group: StoredGroup,
    q: { names?: string[]; prefix?: string; start?: number; end?: number; matches: MessagePredicate; limit: number; cursor?: Cursor },
  ): { items: Array<StoredEvent & { stream: string }>; next?: Cursor } {
    const policy = this.filterPaging;
    const at: Cursor = q.cursor ?? { offset: 0, page: 0 };
    if (at.trailing) return { items: [] };
    const every = policy.emptyPageEvery ?? 0;
    if (every >= 2 && (at.page + 1) % every === 0) return { items: [], next: { ...at, page: at.page + 1 } };
    const size = Math.min(q.limit, policy.maxPageSize ?? q.limit);
    const heads: { stream: StoredStream; i: number }[] = [];
    for (const s of group.streams.values()) {
      if (q.names && !q.names.includes(s.name)) continue;
      if (q.prefix !== undefined && !s.name.startsWith(q.prefix)) continue;
      let i = q.start === undefined ? 0 : lowerBound(s.events, (e) => e.timestamp >= (q.start as number));
      if (at.after) {
        const after = at.after;
        i = Math.max(i, lowerBound(s.events, (e) => compareKey(e, after) > 0));
      }
      if (i < s.events.length) heads.push({ stream: s, i });
    }
    const items: Array<StoredEvent & { stream: string }> = [];
    let more = false;
    for (;;) {
      let best = -1;
      for (let h = 0; h < heads.length; h++) {
        const { stream, i } = heads[h];
        if (i >= stream.events.length || (q.end !== undefined && stream.events[i].timestamp > q.end)) continue;
        if (best < 0 || byTime(stream.events[i], heads[best].stream.events[heads[best].i]) < 0) best = h;
      }
      if (best < 0) break;
      const head = heads[best];
      const e = head.stream.events[head.i++];
      if (!q.matches(e.message)) continue;
      if (items.length === size) {
        more = true;
        break;
      }
      items.push({ ...e, stream: head.stream.name });
    }
    const last = items.at(-1);
    const after = last ? [last.timestamp, last.ingestionTime, last.seq] : at.after;
    if (more) return { items, next: { offset: 0, page: at.page + 1, ...(after ? { after } : {}) } };
    if (policy.trailingEmptyPage && items.length > 0) return { items, next: { offset: 0, page: at.page + 1, trailing: true } };
    return { items };
  }

  private describeLogGroups(input: Input): JsonObject {
    const prefix = input.string('logGroupNamePrefix', { min: 1, max: 512 });
    const pattern = input.string('logGroupNamePattern', { max: 512 });
    const limit = input.integer('limit', { min: 1, max: 50 }) ?? 50;
    if (prefix !== undefined && pattern !== undefined) {
      throw invalidParameter('LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.');
    }
    const cursor = this.token('DescribeLogGroups', input);
    const groups = [...this.groups.values()]
      .filter((g) => prefix === undefined || g.name.startsWith(prefix))
      .filter((g) => pattern === undefined || g.name.includes(pattern))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((g): JsonObject => {
        const arn = this.groupArn(g.name);
        // With a pattern only arn, creationTime and logGroupName come back.
        if (pattern !== undefined) return { logGroupName: g.name, creationTime: g.creationTime, arn: `${arn}:*` };
        let storedBytes = 0;
        for (const s of g.streams.values()) for (const e of s.events) storedBytes += Buffer.byteLength(e.message);
        return {
          logGroupName: g.name,
          creationTime: g.creationTime,
          metricFilterCount: 0,
          arn: `${arn}:*`,
          storedBytes,
          logGroupClass: 'STANDARD',
          logGroupArn: arn,
        };
      });
    const page = pageOf(groups, limit, cursor, {});
    const body: JsonObject = { logGroups: page.items };
    if (page.next) body.nextToken = encodeToken('DescribeLogGroups', page.next);
    return body;
  }

  /**
   * Tokens are `f/<56 digits>` / `b/<56 digits>` positions in the stream. At either end the
   * token that was passed in comes back unchanged, as on the real service (hence the SDK's
   * `stopOnSameToken`).
   */
  private getLogEvents(input: Input): JsonObject {
    const group = this.group(input);
    const streamName = input.string('logStreamName', { required: true, min: 1, max: 512 }) ?? '';
    const start = input.integer('startTime', { min: 0 });
    const end = input.integer('endTime', { min: 0 });
    const limit = input.integer('limit', { min: 1, max: 10000 }) ?? 10000;
    const fromHead = input.boolean('startFromHead');
    const token = input.string('nextToken', { min: 1 });
    const stream = group.streams.get(streamName);
    if (!stream) throw new AwsServiceError('ResourceNotFoundException', 'The specified log stream does not exist.');
    const events = stream.events.filter(
      (e) => (start === undefined || e.timestamp >= start) && (end === undefined || e.timestamp <= end),
    );
    let from: number;
    let to: number;
    if (token !== undefined) {
      const m = /^([fb])\/(\d{56})$/.exec(token);
      if (!m) throw invalidParameter('The specified nextToken is not valid.');
      const pos = Math.min(Number(m[2]), events.length);
      if (m[1] === 'f') {
        from = pos;
        to = Math.min(events.length, pos + limit);
      } else {
        to = pos;
        from = Math.max(0, pos - limit);
      }
    } else if (fromHead) {
      from = 0;
      to = Math.min(events.length, limit);
    } else {
      to = events.length;
      from = Math.max(0, to - limit);
    }
    const page = events.slice(from, to);
    const forward = page.length === 0 && token?.startsWith('f/') ? token : positionToken('f', to);
    const backward = page.length === 0 && token?.startsWith('b/') ? token : positionToken('b', from);
    return {
      events: page.map((e) => ({ timestamp: e.timestamp, message: e.message, ingestionTime: e.ingestionTime })),
      nextForwardToken: forward,
      nextBackwardToken: backward,
    };
  }
}

function invalidParameter(message: string): AwsServiceError {
  return new AwsServiceError('InvalidParameterException', message);
}

function byTime(a: StoredEvent, b: StoredEvent): number {
  return a.timestamp - b.timestamp || a.ingestionTime - b.ingestionTime || a.seq - b.seq;
}

/** An event against a sort key [timestamp, ingestionTime, seq]. */
function compareKey(e: StoredEvent, key: readonly number[]): number {
  return e.timestamp - key[0] || e.ingestionTime - key[1] || e.seq - key[2];
}

/** The first index whose event satisfies `pred` (which must be false, then true, over the sorted array). */
function lowerBound(events: readonly StoredEvent[], pred: (e: StoredEvent) => boolean): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(events[mid])) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** 56 digits like the real ids: the timestamp, then the arrival number. */
function eventId(timestamp: number, seq: number): string {
  return `${String(timestamp).padStart(20, '0')}${String(seq).padStart(36, '0')}`;
}

function positionToken(direction: 'f' | 'b', position: number): string {
  return `${direction}/${String(position).padStart(56, '0')}`;
}
