/**
 * Files a reader must see whole: every report, history entry and checkpoint is written
 * through {@link writeFileAtomic} — a temporary file with a unique random name in the target's
 * own folder (so the rename never crosses file systems), written, fsynced, renamed over the
 * target, and the folder fsynced. Two writers never share a temporary file, and a reader sees
 * the old content or the new, never half of either.
 *
 * {@link serialised} orders related writes: the five files of one output folder are written
 * by one run at a time, so they always come from the same run.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** The suffix of temporary files (readers listing a folder skip names containing it). */
export const TEMP_SUFFIX = '.tmp';

/** Writes `data` to `file` atomically (creating its folder); on failure the temporary file is removed and `file` untouched. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`);
  // `wx`: never follow or reuse something already there.
  const fh = await open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
}

/** Makes a rename durable. Some file systems cannot fsync a folder; the rename stands anyway. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // EINVAL / EISDIR on file systems without directory fsync
  } finally {
    await fh.close();
  }
}

const queues = new Map<string, Promise<void>>();

/**
 * Runs `fn` once every earlier `serialised` call for the same key (a folder: resolved, so
 * two spellings of one path agree) in this process has settled, failed or not.
 */
export function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const k = resolve(key);
  const before = queues.get(k) ?? Promise.resolve();
  const run = before.then(fn);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(k, settled);
  void settled.then(() => {
    if (queues.get(k) === settled) queues.delete(k);
  });
  return run;
}
