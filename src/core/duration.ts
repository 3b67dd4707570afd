/**
 * Durations in config and options: `90s`, `15m`, `24h`, `90d`, `2w`, compound forms such as
 * `1h30m` or `1d 12h` (largest unit first, each unit once), or a number of milliseconds.
 */
import { z } from 'zod';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};
/** Largest first: a compound duration names its units in this order. */
const UNIT_ORDER = ['w', 'd', 'h', 'm', 's', 'ms'];
const PART_RE = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/gy;

export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new Error(`invalid duration ${input}`);
    return input;
  }
  const bad = () => new Error(`invalid duration "${input}" (expected e.g. 90s, 15m, 24h, 90d, or a compound such as 1h30m)`);
  const text = input.trim();
  if (text === '') throw bad();
  PART_RE.lastIndex = 0;
  let total = 0;
  let last = -1;
  let end = 0;
  for (let m = PART_RE.exec(text); m; m = PART_RE.exec(text)) {
    const rank = UNIT_ORDER.indexOf(m[2]);
    if (rank <= last) throw new Error(`invalid duration "${input}" (name each unit once, largest first: e.g. 1h30m, not 30m1h)`);
    last = rank;
    total += Number(m[1]) * UNIT_MS[m[2]];
    end = PART_RE.lastIndex;
  }
  if (end !== text.length) throw bad();
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (abs >= size) return `${Math.round((ms / size) * 10) / 10}${unit}`;
  }
  return `${ms}ms`;
}

const DURATION_SCHEMAS = new WeakSet<object>();

/** A zod schema for a duration; yields milliseconds. */
export const duration = () => {
  const schema = z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
  DURATION_SCHEMAS.add(schema);
  return schema;
};

/** Whether a schema is one `duration()` made (docs show its default as a duration). */
export function isDurationSchema(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && DURATION_SCHEMAS.has(schema);
}
