/**
 * The files people hand the auditor (audit.yaml, waivers, attestations) are read under a
 * deadline: one on a mount that stopped answering (an NFS server gone, a stuck FUSE daemon)
 * must end in a config error naming the file — exit 2 at start, "keeping the running
 * configuration" on a reload — never a command or a reload that waits forever.
 *
 * The hang is real, not a stub: every thread of libuv's pool (which runs Node's file system
 * calls) is held in a blocking open() of a FIFO nobody writes to, as threads are held in a dead
 * mount's system calls, so the reader's own open() cannot even start. Releasing opens each FIFO
 * for writing, which lets every held open() return.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_READ_TIMEOUT_MS, readSmallFile } from '../../src/config/files';
import { loadConfigFile } from '../../src/config/load';
import { AuditError, ErrorCodes } from '../../src/core/errors';
import { main } from '../../src/cli';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cfg-files-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fifoCount = 0;

/** Holds every thread of the pool (and two more requests queued behind them) until released. */
function hangFileSystemCalls(): { release(): Promise<void> } {
  let released: Promise<void> | undefined;
  const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const fifos = Array.from({ length: threads + 2 }, () => {
    const p = join(dir, `stuck-${fifoCount++}`);
    execFileSync('mkfifo', [p]);
    return p;
  });
  const held = fifos.map((p) => open(p, 'r')); // no O_NONBLOCK: each blocks its thread
  return {
    release() {
      released ??= (async () => {
        const writers = fifos.map((p) => openSync(p, constants.O_RDWR | constants.O_NONBLOCK));
        try {
          for (const fh of await Promise.all(held)) await fh.close();
        } finally {
          writers.forEach(closeSync);
        }
      })();
      return released;
    },
  };
}

/**
 * Runs `fn` while file system calls hang, and releases them when it ends — or after `maxHoldMs`,
 * so a reader without a deadline fails its test (it ends only then) instead of hanging the worker.
 */
async function whileHung<T>(fn: () => Promise<T>, maxHoldMs = 30_000): Promise<T> {
  const hang = hangFileSystemCalls();
  const safety = setTimeout(() => void hang.release(), maxHoldMs);
  try {
    return await fn();
  } finally {
    clearTimeout(safety);
    await hang.release();
  }
}

async function rejection(p: Promise<unknown>): Promise<AuditError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AuditError) return e;
    throw e;
  }
  throw new Error('expected the read to fail');
}

const openDescriptors = () => readdirSync('/proc/self/fd').length;

test('a config file whose read hangs is a config error naming the file and the deadline, at the deadline; the hang was real', async () => {
  const file = join(dir, 'audit.yaml');
  writeFileSync(file, 'deployment: prod\n');
  const before = openDescriptors();
  await whileHung(async () => {
    let probed = false;
    void stat(file).then(() => (probed = true)); // any file system call waits as long as the reader does
    const started = Date.now();
    const e = await rejection(readSmallFile(file, { noun: 'config file', timeoutMs: 400 }));
    const took = Date.now() - started;
    expect(e.code).toBe(ErrorCodes.CONFIG);
    expect(e.message).toBe(`${file}: reading the config file took longer than 0.4 s`);
    expect(took).toBeGreaterThanOrEqual(380);
    // Well before the hang is released (a reader without a deadline would end only then): a
    // functional bound for a loaded machine, not a figure.
    expect(took).toBeLessThan(9_000);
    expect(probed).toBe(false);
  }, 10_000);
  // Once the mount answers again, the abandoned read ends and closes what it opened.
  const deadline = Date.now() + 15_000;
  while (openDescriptors() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(openDescriptors()).toBe(before);
  expect(await readSmallFile(file, { noun: 'config file', timeoutMs: 400 })).toBe('deployment: prod\n');
});

test('a waivers file whose read hangs says so in its own words', async () => {
  const file = join(dir, 'waivers.yaml');
  writeFileSync(file, 'waivers: []\n');
  const e = await whileHung(() => rejection(readSmallFile(file, { noun: 'waivers file', readLabel: 'the waivers file', timeoutMs: 300 })), 10_000);
  expect(e.message).toBe(`${file}: reading the waivers file took longer than 0.3 s`);
});

test(
  'loadConfigFile (what every command and a daemon\'s reload read the config with) keeps the real 10 s deadline: `run` exits 2 with one line naming the file, no stack trace',
  async () => {
    const file = join(dir, 'hung.yaml');
    writeFileSync(file, 'deployment: prod\n');
    expect(CONFIG_READ_TIMEOUT_MS).toBe(10_000);
    const e = await whileHung(() => rejection(loadConfigFile(file)));
    expect(e.message).toBe(`${file}: reading the config file took longer than 10 s`);

    const err: string[] = [];
    const io = { out: () => undefined, err: (s: string) => err.push(s) };
    const started = Date.now();
    const code = await whileHung(() => main(['node', 'aegis-audit', 'run', '--config', file], io));
    const took = Date.now() - started;
    expect(code).toBe(2);
    expect(err.join('')).toBe(`aegis-audit: ${file}: reading the config file took longer than 10 s\n`);
    expect(took).toBeGreaterThanOrEqual(CONFIG_READ_TIMEOUT_MS - 50);
    expect(took).toBeLessThan(CONFIG_READ_TIMEOUT_MS + 10_000);
  },
  60_000,
);
