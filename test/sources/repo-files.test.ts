/**
 * The repository source against real directories: which files it hands on (globs, `.git`, the
 * baseline), that it streams them in bounded chunks, and how it reads the baseline.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoSchema } from '../../src/config/schema';
import { FsRepoSource, REPO_CHUNK_BYTES } from '../../src/sources/repo-files';
import type { RepoFile, RepoSkipped } from '../../src/core/sources';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'repo-src-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function write(rel: string, content: string | Buffer): void {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
}

const source = (over: Record<string, unknown> = {}) => new FsRepoSource(repoSchema.parse({ roots: { aegis: root }, ...over }));

async function collect(src: FsRepoSource): Promise<(RepoFile | RepoSkipped)[]> {
  const out: (RepoFile | RepoSkipped)[] = [];
  for await (const f of src.files('aegis')) out.push(f);
  return out;
}

test('hands on every file but .git, the baseline and the default excludes, in a stable order', async () => {
  write('src/app.py', 'x = 1\n');
  write('.github/workflows/ci.yml', 'on: push\n');
  write('.git/config', '[core]\n');
  write('.git/objects/ab/cdef', 'blob');
  write('.secrets.baseline', '{}');
  write('web/node_modules/left-pad/index.js', 'module.exports = 1\n');
  write('.venv/lib/site.py', 'x\n');
  write('README.md', '# x\n');
  const files = await collect(source());
  expect(files.map((f) => f.path)).toEqual(['README.md', '.github/workflows/ci.yml', 'src/app.py']);
});

test('include and exclude globs choose the files; an excluded folder is not entered', async () => {
  write('src/app.py', 'x\n');
  write('src/app_test.py', 'x\n');
  write('docs/a.md', 'x\n');
  write('vendor/lib.py', 'x\n');
  const files = await collect(source({ include: ['src/**', 'vendor/**'], exclude: ['**/*_test.py', 'vendor/**'] }));
  expect(files.map((f) => f.path)).toEqual(['src/app.py']);
});

test('a file larger than the bound is skipped with its size; others stream in bounded chunks, whole and in order', async () => {
  const big = Buffer.alloc(3 * REPO_CHUNK_BYTES + 17, 'a');
  for (let i = 0; i < big.length; i += 1000) big[i] = 10;
  write('big.txt', big);
  write('huge.bin', Buffer.alloc(5000, 'b'));
  const files = await collect(source({ max_file_bytes: 4 * REPO_CHUNK_BYTES }));
  const skipped = await collect(source({ max_file_bytes: 4096 }));
  expect(skipped.map((f) => ('skipped' in f ? `${f.path}: ${f.skipped}` : f.path))).toEqual([
    `big.txt: larger than 4096 bytes (${big.length} bytes)`,
    'huge.bin: larger than 4096 bytes (5000 bytes)',
  ]);
  const f = files.find((x) => x.path === 'big.txt') as RepoFile;
  const chunks: Buffer[] = [];
  for await (const c of f.chunks()) chunks.push(c);
  expect(chunks.length).toBe(4);
  expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(REPO_CHUNK_BYTES);
  expect(Buffer.concat(chunks).equals(big)).toBe(true);
});

test('a FIFO and a symlink out of the root are skipped with the reason, never read', async () => {
  write('a.py', 'x\n');
  execFileSync('mkfifo', [join(root, 'pipe')]);
  const outside = mkdtempSync(join(tmpdir(), 'repo-out-'));
  try {
    writeFileSync(join(outside, 'secret.env'), 'X=1\n');
    symlinkSync(join(outside, 'secret.env'), join(root, 'link.env'));
    const files = await collect(source());
    expect(files.map((f) => ('skipped' in f ? `${f.path}: ${f.skipped}` : f.path)).sort()).toEqual([
      'a.py',
      'link.env: symlink pointing outside the tree: not followed',
      'pipe: not a regular file (FIFO, socket or device): not read',
    ]);
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

test('the baseline: absent, read, too large, a folder; a missing root is an error naming it', async () => {
  expect(await source().baseline('aegis')).toEqual({ root: 'aegis', path: '.secrets.baseline', status: 'absent' });
  write('.secrets.baseline', '{"version": "1.5.0", "results": {}}');
  expect(await source().baseline('aegis')).toEqual({ root: 'aegis', path: '.secrets.baseline', status: 'ok', text: '{"version": "1.5.0", "results": {}}' });
  expect(await source({ max_baseline_bytes: 1024 }).baseline('aegis')).toMatchObject({ status: 'ok' });
  write('ci/baseline.json', 'x'.repeat(2000));
  expect(await source({ baseline: 'ci/baseline.json', max_baseline_bytes: 1024 }).baseline('aegis')).toMatchObject({ status: 'unreadable', reason: expect.stringMatching(/larger than 1024 bytes/) });
  expect(await source({ baseline: 'ci' }).baseline('aegis')).toMatchObject({ status: 'unreadable', reason: 'not a regular file' });
  // The configured baseline is not scanned as a file of the tree.
  expect((await collect(source({ baseline: 'ci/baseline.json' }))).map((f) => f.path)).toEqual(['.secrets.baseline']);
  const missing = new FsRepoSource(repoSchema.parse({ roots: { aegis: join(root, 'nope') } }));
  await expect(collect(missing)).rejects.toThrow(/root aegis \(.*nope\)/);
});
