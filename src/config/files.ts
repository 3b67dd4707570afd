/**
 * Reading the files people hand the auditor (audit.yaml, waivers, attestations): only a
 * regular file, at most 1 MiB, within a deadline. `--config /dev/zero` would otherwise read
 * forever, a FIFO block the process (and a daemon's reload) until someone writes to it, and
 * a 10 MB file cost seconds and hundreds of megabytes before any validation said no.
 *
 * The file is opened non-blocking (a FIFO opens at once instead of waiting for a writer) and
 * what it is is taken from the open descriptor, so a file swapped after a check cannot slip
 * through; no more than the limit (plus one byte, to tell "too large") is ever read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { AuditError, ErrorCodes } from '../core/errors';

export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
export const CONFIG_READ_TIMEOUT_MS = 10_000;

export interface SmallFileOptions {
  /** What the file is, for messages: `config file`, `waivers file`. */
  noun: string;
  /** How "cannot read …" names it, when not by the bare noun (`the waivers file`). */
  readLabel?: string;
  maxBytes?: number;
  timeoutMs?: number;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function kind(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

function bytesText(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

function configError(message: string): AuditError {
  return new AuditError(ErrorCodes.CONFIG, message);
}

function cannotRead(file: string, opts: SmallFileOptions, e: unknown): AuditError {
  return configError(`${file}: cannot read ${opts.readLabel ?? opts.noun} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
}

function refuseUnlessSmallFile(file: string, st: Stats, noun: string, max: number): void {
  const what = kind(st);
  if (what) throw configError(`${file}: not a regular file (${what}); a ${noun} must be a regular file of at most ${bytesText(max)}`);
  if (st.size > max) throw configError(`${file}: larger than the ${bytesText(max)} limit for a ${noun} (${st.size} bytes)`);
}

function tooLarge(file: string, noun: string, max: number): AuditError {
  // The file grew after it was measured (or reports no size, as some pseudo-files do).
  return configError(`${file}: larger than the ${bytesText(max)} limit for a ${noun} (more than ${max} bytes read)`);
}

function decode(file: string, noun: string, buf: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw configError(`${file}: the ${noun} is not UTF-8 text`);
  }
}

/** The text of a small regular file; for callers that cannot wait (no deadline: a regular file does not block). */
export function readSmallFileSync(file: string, opts: SmallFileOptions): string {
  const max = opts.maxBytes ?? MAX_CONFIG_FILE_BYTES;
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (e) {
    throw cannotRead(file, opts, e);
  }
  try {
    refuseUnlessSmallFile(file, fstatSync(fd), opts.noun, max);
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw cannotRead(file, opts, e);
      }
      if (got === 0) break;
      n += got;
      if (n > max) throw tooLarge(file, opts.noun, max);
    }
    return decode(file, opts.noun, buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** The text of a small regular file, read within `timeoutMs` (a hung network mount is an error, not a hang). */
export async function readSmallFile(file: string, opts: SmallFileOptions): Promise<string> {
  const max = opts.maxBytes ?? MAX_CONFIG_FILE_BYTES;
  const timeoutMs = opts.timeoutMs ?? CONFIG_READ_TIMEOUT_MS;
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_ok, fail) => {
    timer = setTimeout(() => {
      ac.abort();
      fail(configError(`${file}: reading the ${opts.noun} took longer than ${timeoutMs / 1000} s`));
    }, timeoutMs);
    timer.unref();
  });
  const read = (async () => {
    let fh;
    try {
      fh = await open(file, OPEN_FLAGS);
    } catch (e) {
      throw cannotRead(file, opts, e);
    }
    try {
      refuseUnlessSmallFile(file, await fh.stat(), opts.noun, max);
      const buf = Buffer.alloc(max + 1);
      let n = 0;
      while (!ac.signal.aborted) {
        let got: number;
        try {
          ({ bytesRead: got } = await fh.read(buf, n, buf.length - n, null));
        } catch (e) {
          throw cannotRead(file, opts, e);
        }
        if (got === 0) break;
        n += got;
        if (n > max) throw tooLarge(file, opts.noun, max);
      }
      return decode(file, opts.noun, buf.subarray(0, n));
    } finally {
      await fh.close().catch(() => undefined);
    }
  })();
  read.catch(() => undefined); // after the deadline, its outcome no longer matters
  try {
    return await Promise.race([read, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
