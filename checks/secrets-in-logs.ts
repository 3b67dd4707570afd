/**
 * Aegis keeps secrets out of its logs by three layers (*Secret Management*, "Secret-in-log
 * prevention"); a log line holding one has leaked it to everyone who reads logs. This check
 * reads every line of every configured log stream (files and CloudWatch groups), JSON or not,
 * and finds (a) the value of any secret the auditor can read (env files, SSM, Vault), matched
 * by a pattern set built in memory for the run and wiped after it, and (b) secret shapes —
 * private-key PEM blocks, JWTs, `acp_` API keys, bearer tokens, AWS keys, Slack, Splunk HEC,
 * Datadog and PagerDuty keys — after detect-secrets' detectors. A finding names the stream,
 * the line (or CloudWatch event) and the detector; never the value, nor any piece of it.
 *
 * Incremental: each stream's checkpoint (keyed by what the stream is — a file's device and
 * inode, a log group's region and name — not by a deployment name) records where reading
 * stopped and the leaks found so far, so a daemon reads only new lines and keeps reporting a
 * leak while the stream still holds it. A first read of months of logs may take longer than
 * one run: progress is saved as it goes, the read stops a little before the check's deadline
 * and the next run continues; until every stream has been read to its end, a run with nothing
 * found is an error, never a pass.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { duration, formatDuration } from '../src/core/duration';
import { AuditError, ErrorCodes } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { RawLogChunk, RawLogPosition, RawLogStream } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';
import { KnownValueMatcher, SHAPE_DETECTORS, scanOptions, scanShapes } from './lib/secret-scan';

const KNOWN = 'known-secret';
const STATE_VERSION = 1;
/** Stream and secret names are quoted in messages at most this long; resources keep them whole. */
const MAX_NAME_IN_MESSAGE = 160;
const TITLES: Record<string, string> = Object.fromEntries(SHAPE_DETECTORS.map((d) => [d.id, d.title]));

/** Where in a stream a leak was seen: a line and byte offset (files), or an event (CloudWatch). */
interface Place {
  line?: number;
  offset?: number;
  event?: string;
  ts?: number;
  logStream?: string;
}

interface Leak {
  detector: string;
  /** For known values: the secret's name (never its value). */
  secret?: string;
  first: Place;
  last: Place;
  count: number;
  /** Byte offset (files) or event time (CloudWatch) of the last hit counted, so a re-read tail is not counted twice. */
  mark: number;
}

interface StreamState {
  v: number;
  stream: string;
  position?: RawLogPosition;
  leaks: Leak[];
}

/** A stored checkpoint as this version writes it; anything else is read again from the start. */
function parseState(v: unknown): { ok: true; value: StreamState } | { ok: false; why: string } {
  if (typeof v !== 'object' || v === null) return { ok: false, why: 'not an object' };
  const s = v as Partial<StreamState>;
  if (s.v !== STATE_VERSION) return { ok: false, why: `version ${String(s.v)}, not ${STATE_VERSION}` };
  if (!Array.isArray(s.leaks) || (s.position !== undefined && (typeof s.position !== 'object' || s.position === null))) return { ok: false, why: 'malformed' };
  return { ok: true, value: s as StreamState };
}

/** How long before its deadline the check stops reading, to save and report. */
function reserveMs(budgetMs: number): number {
  return Math.min(30_000, Math.max(budgetMs * 0.1, Math.min(1_000, budgetMs * 0.5)));
}

const MB = 1024 * 1024;

function describePlace(p: Place): string {
  if (p.event !== undefined) return `event ${untrusted.text(p.event, 80)}${p.logStream ? ` in stream ${untrusted.text(p.logStream, 80)}` : ''} at ${new Date(p.ts ?? 0).toISOString()}`;
  return `line ${p.line} (byte ${p.offset})`;
}

/** Line and offset (files) or event (CloudWatch) of a byte index in a chunk. */
function locator(chunk: Pick<RawLogChunk, 'data' | 'offset' | 'line' | 'events'>): (at: number) => Place {
  if (chunk.events) {
    const events = chunk.events;
    return (at) => {
      let lo = 0;
      let hi = events.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (events[mid].at <= at) lo = mid;
        else hi = mid - 1;
      }
      const e = events[lo];
      return { event: e.id, ts: e.ts, logStream: e.stream };
    };
  }
  // Hits are found in increasing order per detector, not overall: count lines from a cached point.
  let atPos = 0;
  let atLine = chunk.line;
  return (at) => {
    if (at < atPos) {
      atPos = 0;
      atLine = chunk.line;
    }
    for (let i = chunk.data.indexOf(10, atPos); i >= 0 && i < at; i = chunk.data.indexOf(10, i + 1)) atLine++;
    atPos = at;
    return { line: atLine, offset: chunk.offset + at };
  };
}

export default defineCheck({
  meta: {
    id: 'secrets-in-logs',
    title: 'No secret value or secret-shaped token appears in the log streams',
    description:
      'Reads every line of every configured log stream and looks for the value of every secret the auditor can read (env files, SSM, Vault) and for secret shapes: private-key PEM blocks, JWTs, acp_ API keys, bearer tokens, AWS keys, Slack, Splunk HEC, Datadog and PagerDuty tokens. A pass proves no log line holds one; whoever can read the logs cannot read a secret from them.',
    severity: 'critical',
    sources: ['logs'],
    schedule: '*/15 * * * *',
    // A secret in the logs is a leak from the first run that finds it.
    pagesOnFirstFailure: true,
    checklist: ['no-plaintext-secrets'],
    runbook: 'docs/runbooks/secrets-in-logs.md',
    // Reading grows with the logs (a first run over a month of them); progress is kept as it goes.
    timeout: 30 * 60_000,
    remediation:
      'Rotate the leaked secret now (Secret Management, "What to do if you suspect a secret leak"), then find the code path that logged it and route the field through the redactor; delete or expire the log copies.',
  },
  messages: {
    knownValue: 'Log stream {{stream}} holds the value of {{secret}} at {{place}} ({{count}} occurrence(s) so far).',
    shape: 'Log stream {{stream}} holds {{shape}} at {{place}} ({{count}} occurrence(s) so far).',
    noKnownValues: 'No secret values could be read (no secrets source configured), so log lines were searched for secret shapes only.',
    checkpointReset: 'The checkpoint of log stream {{stream}} could not be used ({{reason}}), so the stream was searched from its start again.',
    incomplete: 'The search is incomplete: {{progress}}. The rest is searched next run; the findings so far stand.',
  },
  options: z.object({
    ...scanOptions,
    /** How far back a CloudWatch group is read the first time; null = the log source's window. */
    window: duration().nullable().default(null),
    /** Services whose logs are read; empty = every service with a configured log location. */
    services: z.array(z.string().min(1)).default([]),
    /** How often a long read saves its progress (a restart loses at most this much work). */
    checkpoint_interval: duration().default(10_000),
  }),
  async run(ctx) {
    const startedMs = Date.now();
    const stopAt = ctx.deadline - reserveMs(ctx.deadline - startedMs);
    const timeUp = () => ctx.signal.aborted || Date.now() >= stopAt;
    const logs = ctx.source('logs');
    const detectors = new Set(ctx.options.detectors);
    const windowMs = ctx.options.window ?? logs.windowMs;
    const since = new Date(ctx.now().getTime() - windowMs);
    const services = ctx.options.services.length > 0 ? ctx.options.services : logs.services();

    const secrets = ctx.sources.secrets;
    const holders = secrets ? await secrets.all() : [];
    if (!secrets) ctx.report({ messageId: 'noKnownValues', resource: resource({ source: 'secrets' }), severity: 'info' });
    const matcher = new KnownValueMatcher(
      holders.map((h) => ({ label: h.name, value: h.value.reveal() })),
      { minLength: ctx.options.min_secret_length },
    );
    let bytes = 0;
    let streams = 0;
    /** Streams not read to their end in this run (time ran out). */
    const unfinished: string[] = [];
    let reported = 0;
    try {
      for (const service of services) {
        for (const stream of await logs.rawStreams(service, ctx.signal)) {
          streams++;
          bytes += await scanStream(stream);
        }
      }
    } finally {
      matcher.dispose();
    }
    ctx.measure('log_bytes_scanned', bytes, 'Log bytes searched for secrets in this run (new since the checkpoints)');
    ctx.measure('log_streams_scanned', streams, 'Log streams searched for secrets');
    ctx.measure('log_streams_unfinished', unfinished.length, 'Log streams not yet searched to their end (a long first read continues next run)');
    if (unfinished.length > 0) {
      const first = untrusted.text(unfinished[0], MAX_NAME_IN_MESSAGE);
      const progress = `${(bytes / MB).toFixed(1)} MB searched in ${formatDuration(Date.now() - startedMs)}, and ${unfinished.length} stream(s) not yet read to their end (the first: ${first}); the check's time ran out (timeout ${formatDuration(ctx.deadline - startedMs)}; checks.secrets-in-logs.timeout)`;
      // What is found stands; with nothing found, lines not yet searched are no pass.
      if (reported === 0) throw new AuditError(ErrorCodes.TIMEOUT, `secrets-in-logs: the search is incomplete: ${progress}. The rest is searched next run.`, { reason: 'timeout' });
      ctx.report({ messageId: 'incomplete', data: { progress }, resource: resource({ search: 'incomplete' }), evidence: { streamsUnfinished: unfinished.length, bytesSearched: bytes }, severity: 'info' });
    }

    async function loadState(stream: RawLogStream, key: string): Promise<StreamState> {
      const fresh: StreamState = { v: STATE_VERSION, stream: stream.name, leaks: [] };
      // `run --full`: every stream is searched from its start again.
      if (ctx.full) return fresh;
      const stored = await ctx.state.read<unknown>(key);
      if (stored.status === 'absent') return fresh;
      const parsed = stored.status === 'ok' ? parseState(stored.value) : ({ ok: false, why: stored.reason } as const);
      if (parsed.ok) return parsed.value;
      ctx.report({
        messageId: 'checkpointReset',
        data: { stream: untrusted.text(stream.name, MAX_NAME_IN_MESSAGE), reason: untrusted.text(parsed.why, 200) },
        resource: resource({ stream: untrusted.id(stream.name), checkpoint: 'reset' }),
        evidence: { stateKey: untrusted.text(key, 400), problem: untrusted.text(parsed.why, 400) },
        severity: 'info',
      });
      return fresh;
    }

    async function scanStream(stream: RawLogStream): Promise<number> {
      const key = `secrets-in-logs:${stream.identity}`;
      const state = await loadState(stream, key);
      state.stream = stream.name;
      const byKey = new Map(state.leaks.map((l) => [`${l.detector}\n${l.secret ?? ''}`, l]));
      // Hits at or before these marks were counted by an earlier run.
      const prior = new Map([...byKey].map(([k, l]) => [k, l.mark]));
      let scanned = 0;
      let finished = true;
      let savedAt = Date.now();
      const save = async () => {
        // CloudWatch events age out of the window; what a file holds stays until the file goes.
        state.leaks = [...byKey.values()].filter((l) => stream.kind !== 'cloudwatch' || (l.last.ts ?? 0) >= since.getTime());
        await ctx.state.set(key, state);
        savedAt = Date.now();
      };
      if (timeUp()) finished = false;
      else {
        // The last line of the previous file chunk, searched again with the next chunk for shapes
        // that run on into the next line (a PEM armor ending one chunk, its body starting the next).
        let tail: { data: Buffer; offset: number; line: number } | undefined;
        for await (const chunk of stream.read(state.position, { since, signal: ctx.signal })) {
          // The stream started over (a file truncated or rewritten in place): what was counted no longer applies.
          if (chunk.restarted) {
            byKey.clear();
            prior.clear();
            tail = undefined;
          }
          scanned += chunk.data.length;
          const record = (target: Pick<RawLogChunk, 'data' | 'offset' | 'line' | 'events'>, carried: number) => {
            const locate = locator(target);
            return (detector: string, secret: string | undefined, at: number) => {
              const mark = target.events ? (locate(at).ts ?? 0) : target.offset + at;
              const k = `${detector}\n${secret ?? ''}`;
              const prev = byKey.get(k);
              // Counted by an earlier run: a re-read partial last line, or CloudWatch's ingestion-delay margin.
              if (mark <= (prior.get(k) ?? -1)) return;
              // In the carried line: counted with the previous chunk unless it needed this one.
              if (at < carried && prev && mark <= prev.mark) return;
              const place = locate(at);
              if (prev) {
                prev.count++;
                prev.last = place;
                prev.mark = Math.max(prev.mark, mark);
              } else byKey.set(k, { detector, ...(secret !== undefined ? { secret } : {}), first: place, last: place, count: 1, mark });
            };
          };
          const hit = record(chunk, 0);
          matcher.scan(chunk.data, (pattern, at) => {
            for (const name of matcher.labels(pattern)) hit(KNOWN, name, at);
          });
          const joined = tail && !chunk.events && tail.offset + tail.data.length === chunk.offset ? tail : undefined;
          if (joined) {
            const target = { data: Buffer.concat([joined.data, chunk.data]), offset: joined.offset, line: joined.line };
            const hitJoined = record(target, joined.data.length);
            shapesIn(target.data, detectors, (id, at) => hitJoined(id, undefined, at));
          } else shapesIn(chunk.data, detectors, (id, at) => hit(id, undefined, at));
          tail = chunk.events ? undefined : lastLine(chunk);
          state.position = chunk.next;
          if (timeUp()) {
            finished = false;
            break;
          }
          if (Date.now() - savedAt >= ctx.options.checkpoint_interval) await save();
        }
      }
      await save();
      if (!finished) unfinished.push(stream.name);
      for (const l of state.leaks) report(stream, l);
      return scanned;
    }

    function report(stream: RawLogStream, l: Leak): void {
      reported++;
      const shown = untrusted.text(stream.name, MAX_NAME_IN_MESSAGE);
      const place = describePlace(l.first);
      const id = untrusted.id(stream.name);
      const safePlace = (p: Place) => ({ ...p, ...(p.event !== undefined ? { event: untrusted.text(p.event, 80) } : {}), ...(p.logStream !== undefined ? { logStream: untrusted.text(p.logStream, 120) } : {}) });
      const evidence = {
        stream: id,
        kind: stream.kind,
        detector: l.detector,
        first: safePlace(l.first),
        last: safePlace(l.last),
        occurrences: l.count,
        ...(l.secret !== undefined ? { secret: untrusted.text(l.secret, 120) } : {}),
      };
      if (l.secret !== undefined) {
        ctx.report({
          messageId: 'knownValue',
          data: { stream: shown, secret: untrusted.text(l.secret, 80), place, count: l.count },
          resource: resource({ stream: id, detector: KNOWN, secret: untrusted.id(l.secret) }),
          evidence,
        });
      } else {
        ctx.report({
          messageId: 'shape',
          data: { stream: shown, shape: TITLES[l.detector] ?? l.detector, place, count: l.count },
          resource: resource({ stream: id, detector: l.detector }),
          evidence,
        });
      }
    }
  },
});

/** How much of a chunk's last line is carried into the next chunk's shape search. */
const TAIL_BYTES = 512;

/** The end of a file chunk's last complete line (at most TAIL_BYTES), where it is and which line. */
function lastLine(chunk: RawLogChunk): { data: Buffer; offset: number; line: number } | undefined {
  const d = chunk.data;
  if (d.length === 0 || d[d.length - 1] !== 10) return undefined;
  const start = Math.max(d.lastIndexOf(10, d.length - 2) + 1, d.length - TAIL_BYTES);
  // The chunk ends its last line, so the next line number is one past it (no second pass over the chunk).
  let line = (chunk.next.line ?? 0) - 1;
  if (chunk.next.line === undefined) {
    line = chunk.line;
    for (let i = d.indexOf(10); i >= 0 && i < start; i = d.indexOf(10, i + 1)) line++;
  }
  return { data: Buffer.from(d.subarray(start)), offset: chunk.offset + start, line };
}

/** Shape scan restricted to the enabled detectors. */
function shapesIn(buf: Buffer, enabled: ReadonlySet<string>, onHit: (id: string, at: number) => void): void {
  scanShapes(buf, (id, at) => {
    if (enabled.has(id)) onHit(id, at);
  });
}
