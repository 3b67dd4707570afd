import { getPriority, setPriority } from 'node:os';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';

/**
 * Names the calling thread (Linux: its `comm`, at most 15 bytes), so `top -H`, `ps -L` and
 * /proc show which of the auditor's threads is which. Elsewhere, or where /proc is not
 * writable, nothing happens.
 */
export function nameThisThread(name: string): void {
  if (process.platform !== 'linux') return;
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // not ours to name: nothing lost
  }
}

/** The calling thread's id in the kernel (Linux), else undefined. */
export function thisThreadId(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

function lower(tid: number, increment: number): void {
  try {
    setPriority(tid, Math.min(19, getPriority(tid) + increment));
  } catch {
    // gone, or not permitted here: the thread keeps its priority
  }
}

/**
 * Lowers the priority of every thread of this process but `keep` by `increment` (a nice
 * increment, 0–19; on Linux each thread has its own): the calling thread, V8's and libuv's
 * helper threads, and — since a thread starts with its creator's — every thread started from
 * here afterwards. Without `keep`'s id (not Linux), the calling thread alone. Where it cannot,
 * nothing happens.
 */
export function lowerThreadsBut(keep: number | undefined, increment: number): void {
  if (!Number.isInteger(increment) || increment <= 0 || increment > 19) return;
  if (keep === undefined || process.platform !== 'linux') return lower(0, increment);
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    return lower(0, increment);
  }
  for (const tid of tids) if (tid !== keep) lower(tid, increment);
}

/** A nice increment from the environment: an integer 0–19, else `fallback`. */
export function niceFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const v = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isInteger(v) && v >= 0 && v <= 19 ? v : fallback;
}

let detachedOnce = false;

/**
 * Detaches one throwaway ArrayBuffer in this thread (once). V8 compiles typed-array code on
 * the assumption that no ArrayBuffer of the thread has ever been detached, and throws away all
 * of that code the first time one is — which transferring a buffer to a worker thread does (the
 * receiving thread detaches nothing). A thread that will transfer buffers calls this before its
 * hot code is compiled, so that code is compiled once, for what it will meet. (Traced with
 * node's --trace-deopt: the first batch handed to a worker used to discard the pg protocol
 * parser's and the batch scanner's optimised code on the main thread.)
 */
export function detachOnce(): void {
  if (detachedOnce) return;
  detachedOnce = true;
  const spent = new ArrayBuffer(8);
  structuredClone(spent, { transfer: [spent] });
}
