/**
 * "Latest" verdicts over logs: the latest group of events per key (the latest start of each
 * instance), however long ago, bounded by a lookback. The first run reads the whole lookback;
 * what it found is kept in the auditor's state with the log source's cursor, so later runs
 * read only events since, fold them in, and drop what fell out of the lookback — the same
 * answer a full read would give, for the cost of the new events.
 *
 * The state belongs to what it describes: it is keyed by the log location (files glob,
 * CloudWatch group) and what is kept of it, never by the deployment's name; state of another
 * location, or kept with other settings, is not used.
 */
import { createHash } from 'node:crypto';
import { badData } from '../../src/core/errors';
import type { LogCursor, LogEvent, LogSource, StateStore } from '../../src/core/sources';

/** A kept event: JSON-safe, bounded, never a secret; `ts` in epoch milliseconds. */
export interface KeptEvent {
  ts: number;
}

export interface LatestPerKeySpec<R extends KeptEvent> {
  /** What is kept, for the state key (the check id and what of it, e.g. `signing-key-source:starts`). */
  name: string;
  service: string;
  /** The event read (pushed down to the source as a filter). */
  event: string;
  lookbackMs: number;
  /** Settings the kept records depend on: kept state made with other settings is not used. */
  params?: unknown;
  /** The key of an event (e.g. its instance), or undefined to ignore the event. */
  keyOf(ev: LogEvent): string | undefined;
  /** What to keep of an event: small, JSON-safe, no secret. */
  keep(ev: LogEvent): R | undefined;
  /** Validates one kept record read back from state (state written by an older version is read afresh). */
  isKept(v: unknown): v is R;
  /** Given one key's records oldest first, the index where its latest group begins; earlier records are dropped. */
  latestFrom(records: readonly R[]): number;
  /** Most keys kept; more is an error rather than unbounded state (log fields are untrusted). */
  maxKeys?: number;
}

export interface LatestPerKey<R extends KeptEvent> {
  /** Each key's latest group, oldest first, in key order. */
  byKey: Map<string, R[]>;
  /** Whether this run resumed from kept state (false: it read the whole lookback). */
  resumed: boolean;
  /** Events of `spec.event` read this run. */
  eventsRead: number;
  /** The oldest event time considered (now − lookback). */
  since: Date;
  /** The log location the state is bound to. */
  location: string;
}

interface KeptState<R> {
  version: 1;
  location: string;
  params: string;
  cursor: LogCursor;
  /** [key, records] pairs (keys are log text: never object property names). */
  entries: [string, R[]][];
  updatedAt: string;
}

const DEFAULT_MAX_KEYS = 10_000;
/** A key's pending records are trimmed to its latest group once they pass this many. */
const TRIM_AT = 256;

function stateKey(name: string, location: string, service: string, event: string, params: string): string {
  const id = createHash('sha256').update([location, service, event, params].join('\n')).digest('hex').slice(0, 24);
  return `${name}:${id}`;
}

function sortAndTrim<R extends KeptEvent>(records: R[], latestFrom: (r: readonly R[]) => number): R[] {
  // Identical records are one event read twice (a resumed read re-reads its margin).
  const seen = new Set<string>();
  const unique: R[] = [];
  for (const r of records) {
    const k = JSON.stringify(r);
    if (seen.has(k)) continue;
    seen.add(k);
    unique.push(r);
  }
  unique.sort((a, b) => a.ts - b.ts);
  const from = Math.max(0, Math.min(unique.length, latestFrom(unique)));
  return unique.slice(from);
}

export async function latestPerKey<R extends KeptEvent>(
  ctx: { state: StateStore; signal: AbortSignal; now(): Date; full?: boolean },
  logs: LogSource,
  spec: LatestPerKeySpec<R>,
): Promise<LatestPerKey<R>> {
  const location = logs.location(spec.service);
  const params = JSON.stringify(spec.params ?? null);
  const key = stateKey(spec.name, location, spec.service, spec.event, params);
  const since = new Date(ctx.now().getTime() - spec.lookbackMs);
  const maxKeys = spec.maxKeys ?? DEFAULT_MAX_KEYS;

  // `run --full` reads the whole lookback again (and replaces what was kept).
  const stored = ctx.full ? undefined : validState(await ctx.state.get<unknown>(key), location, params, spec.isKept);
  const byKey = new Map<string, R[]>(stored?.entries ?? []);

  const read = logs.events(spec.service, { since, event: spec.event, signal: ctx.signal, ...(stored ? { after: stored.cursor } : {}) });
  let eventsRead = 0;
  for await (const ev of read) {
    eventsRead++;
    const k = spec.keyOf(ev);
    if (k === undefined) continue;
    const rec = spec.keep(ev);
    if (!rec) continue;
    let list = byKey.get(k);
    if (!list) {
      if (byKey.size >= maxKeys) {
        throw badData('logs', location, `more than ${maxKeys} distinct keys in ${spec.event} events; refusing to keep them all`);
      }
      byKey.set(k, (list = []));
    }
    list.push(rec);
    if (list.length > TRIM_AT) byKey.set(k, sortAndTrim(list, spec.latestFrom));
  }
  const cursor = read.cursor();

  // Fold, and drop what fell out of the lookback: a full read would not see it either.
  const result = new Map<string, R[]>();
  for (const k of [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const kept = sortAndTrim(
      (byKey.get(k) ?? []).filter((r) => r.ts >= since.getTime()),
      spec.latestFrom,
    );
    if (kept.length > 0) result.set(k, kept);
  }
  const next: KeptState<R> = { version: 1, location, params, cursor, entries: [...result], updatedAt: ctx.now().toISOString() };
  await ctx.state.set(key, next);
  return { byKey: result, resumed: stored !== undefined, eventsRead, since, location };
}

function validState<R>(v: unknown, location: string, params: string, isKept: (v: unknown) => v is R): KeptState<R> | undefined {
  const s = v as Partial<KeptState<R>> | undefined;
  if (!s || typeof s !== 'object' || s.version !== 1 || s.location !== location || s.params !== params) return undefined;
  if (!s.cursor || typeof s.cursor !== 'object' || s.cursor.location !== location || !Array.isArray(s.entries)) return undefined;
  for (const e of s.entries) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !Array.isArray(e[1]) || !e[1].every(isKept)) return undefined;
  }
  return s as KeptState<R>;
}
