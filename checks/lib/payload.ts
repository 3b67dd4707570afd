/** Narrowing of untrusted JSON payloads (audit rows' `payload`, log event fields). */
import { untrusted } from '../../src/core/untrusted';

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string field of an untrusted object, or undefined. */
export function stringField(obj: unknown, name: string): string | undefined {
  if (!isRecord(obj)) return undefined;
  const v = obj[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * @deprecated Use `untrusted.text` (src/core/untrusted.ts), the one gate for deployment text:
 * it also scrubs secrets and secret shapes. Kept so code written against it goes through the gate.
 */
export function quoteUntrusted(s: string, max = 40): string {
  return untrusted.text(s, max);
}

/** Whole days between two instants, rounded down. */
export function ageDays(from: Date, now: Date): number {
  return Math.floor((now.getTime() - from.getTime()) / 86_400_000);
}
