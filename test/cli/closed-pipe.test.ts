/**
 * A reader that stops early (`aegis-audit checks list | head`) closes the pipe under the CLI.
 * The rest of the output is dropped: no unhandled 'error' event and stack trace on stderr, and
 * the command exits with its own code. The closed pipe is made without a race: the pipe's only
 * reader has exited before the CLI starts, so every write to it fails with EPIPE.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { expectFreshBuild } from '../helpers/build';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');

beforeAll(() => expectFreshBuild());

/**
 * A pipe whose reading end is closed: the writable end of a child's stdin, once that child
 * (still running, so the pipe stays valid here) has closed its fd 0, the pipe's only reader.
 */
async function pipeWithNoReader(): Promise<{ out: Writable; done: () => void }> {
  const reader = spawn(process.execPath, ['-e', "require('fs').closeSync(0); process.stdout.write('closed'); setTimeout(() => {}, 60000)"], { stdio: ['pipe', 'pipe', 'ignore'] });
  await new Promise<void>((r, j) => {
    reader.stdout?.once('data', () => r());
    reader.once('exit', (c) => j(new Error(`the pipe's reader exited (${c}) before closing its end`)));
  });
  return { out: reader.stdin as Writable, done: () => reader.kill('SIGKILL') };
}

async function runInto(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const { out, done } = await pipeWithNoReader();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', out, 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.once('close', (c, s) => r([c, s])));
  done();
  return { code, signal, stderr };
}

test.each([
  ['checks list (answered from the build catalog)', ['checks', 'list']],
  ['checks list --json', ['checks', 'list', '--json']],
  ['--version', ['--version']],
  ['--help (the full command line)', ['--help']],
  ['explain receipt-chain (the full command line)', ['explain', 'receipt-chain']],
])('%s into a closed pipe: exit 0, nothing on stderr', async (_name, args) => {
  const r = await runInto(args);
  expect(r).toEqual({ code: 0, signal: null, stderr: '' });
}, 60_000);

test('a failing command into a closed pipe still exits with its own code', async () => {
  const r = await runInto(['explain', 'no-such-check']);
  expect(r.signal).toBeNull();
  expect(r.code).not.toBe(0);
  expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
}, 60_000);
