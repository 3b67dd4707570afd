/** Narrowing of untrusted JSON payloads (audit rows' `payload`, log event fields). */

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string field of an untrusted object, or undefined. */
export function stringField(obj: unknown, name: string): string | undefined {
  if (!isRecord(obj)) return undefined;
  const v = obj[name];
  return typeof v === 'string' ? v : undefined;
}

/** An untrusted string made safe to quote in a message: one line, bounded length. */
export function quoteUntrusted(s: string, max = 40): string {
  const t = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return t.length > max ? t.slice(0, max) + '…' : t;
}

/** Whole days between two instants, rounded down. */
export function ageDays(from: Date, now: Date): number {
  return Math.floor((now.getTime() - from.getTime()) / 86_400_000);
}
