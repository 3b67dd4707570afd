/**
 * The deploy-tree source against real directories: which files it reads, and how it bounds a
 * hostile tree (symlink loops, links out of the tree, FIFOs, huge, binary and non-UTF-8 files,
 * depth, file count) — each reported, none hanging or exhausting the run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploySchema } from '../../src/config/schema';
import { FsDeploySource } from '../../src/sources/deploy-files';
import type { DeployFile } from '../../src/core/sources';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'deploy-src-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function write(rel: string, content: string | Buffer): void {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
}

async function collect(src: FsDeploySource): Promise<DeployFile[]> {
  const out: DeployFile[] = [];
  for await (const f of src.files()) out.push(f);
  return out;
}

const source = (over: Record<string, unknown> = {}) => new FsDeploySource(deploySchema.parse({ trees: { repo: root }, ...over }));

test('reads YAML files and Dockerfiles by name, in a stable order, and counts the rest', async () => {
  write('k8s/b.yaml', 'b: 1\n');
  write('k8s/a.yml', 'a: 1\n');
  write('Dockerfile', 'FROM alpine\n');
  write('images/api.Dockerfile', 'FROM alpine\n');
  write('images/Containerfile', 'FROM alpine\n');
  write('images/Dockerfile.dev', 'FROM alpine\n');
  write('.github/workflows/ci.yml', 'on: push\n');
  write('README.md', '# hi\n');
  write('scripts/deploy.sh', 'echo\n');
  write('.git/config.yaml', 'not: read\n');
  write('node_modules/x/a.yaml', 'not: read\n');
  const src = source();
  const files = await collect(src);
  expect(files.map((f) => `${f.tree}:${f.path} ${f.kind}`)).toEqual([
    'repo:Dockerfile dockerfile',
    'repo:.github/workflows/ci.yml yaml',
    'repo:images/Containerfile dockerfile',
    'repo:images/Dockerfile.dev dockerfile',
    'repo:images/api.Dockerfile dockerfile',
    'repo:k8s/a.yml yaml',
    'repo:k8s/b.yaml yaml',
  ]);
  expect(files[6].text).toBe('b: 1\n');
  expect(src.stats()).toMatchObject({ files: 7, ignored: 2, skippedLinks: [] });
});

test('symlinks: followed inside the tree, never out of it, loops and second names walked once', async () => {
  write('k8s/app.yaml', 'a: 1\n');
  symlinkSync('..', join(root, 'k8s', 'loop'));
  symlinkSync('/etc', join(root, 'etc-link'));
  symlinkSync('/etc/hostname', join(root, 'k8s', 'host.yaml'));
  symlinkSync('app.yaml', join(root, 'k8s', 'same.yaml'));
  symlinkSync('k8s', join(root, 'manifests'));
  symlinkSync('missing.yaml', join(root, 'dangling.yaml'));
  const src = source();
  const files = await collect(src);
  expect(files.map((f) => f.path)).toEqual(['k8s/app.yaml']);
  expect(src.stats().skippedLinks.map((s) => `${s.path}: ${s.reason}`)).toEqual([
    'dangling.yaml: symlink whose target does not exist (or a symlink loop)',
    'etc-link: symlink pointing outside the tree: not followed',
    'manifests: directory already walked under another name (a symlink loop or second link): not walked again',
    'k8s/host.yaml: symlink pointing outside the tree: not followed',
    'k8s/loop: directory already walked under another name (a symlink loop or second link): not walked again',
    'k8s/same.yaml: the same file as k8s/app.yaml: read once',
  ]);
});

test("a mounted ConfigMap's atomic-writer layout is read once, by its visible names", async () => {
  write('..2026_11_22_10_00_00.123/deploy.yaml', 'kind: Deployment\n');
  symlinkSync('..2026_11_22_10_00_00.123', join(root, '..data'));
  symlinkSync('..data/deploy.yaml', join(root, 'deploy.yaml'));
  const src = source();
  expect((await collect(src)).map((f) => f.path)).toEqual(['deploy.yaml']);
  expect(src.stats().skippedLinks).toEqual([]);
});

test('a FIFO is never opened; huge, binary and non-UTF-8 files are handed on as unreadable', async () => {
  execFileSync('mkfifo', [join(root, 'pipe.yaml')]);
  write('huge.yaml', Buffer.alloc(2048, 'a'));
  write('bin.yaml', Buffer.from([0x61, 0x3a, 0x00, 0x01]));
  write('latin1.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
  write('bom.yaml', '\uFEFFa: 1\n');
  const src = source({ max_file_bytes: 1024 });
  const files = await collect(src);
  expect(files.map((f) => `${f.path}: ${f.unreadable ?? JSON.stringify(f.text)}`)).toEqual([
    'bin.yaml: binary content (NUL bytes)',
    'bom.yaml: "a: 1\\n"',
    'huge.yaml: larger than 1024 bytes (2048 bytes)',
    'latin1.yaml: not UTF-8 text',
  ]);
  expect(src.stats().skippedLinks).toEqual([{ tree: 'repo', path: 'pipe.yaml', reason: 'not a regular file (FIFO, socket or device): not read' }]);
});

test('depth and file count are bounded', async () => {
  write('a/b/c/d/deep.yaml', 'x: 1\n');
  const shallow = source({ max_depth: 2 });
  expect(await collect(shallow)).toEqual([]);
  expect(shallow.stats().skippedLinks).toEqual([{ tree: 'repo', path: 'a/b/c', reason: 'deeper than 2 levels: not walked' }]);
  for (let i = 0; i < 5; i++) write(`m${i}.yaml`, 'x: 1\n');
  await expect(collect(source({ max_files: 4 }))).rejects.toMatchObject({ code: 'AUDIT_ERR_BAD_DATA', message: expect.stringMatching(/^deploy: tree repo \(.*\): more than 4 files to read/) });
});

test('a missing tree, or one that is a file, is an error naming it, never an empty tree', async () => {
  await expect(collect(new FsDeploySource(deploySchema.parse({ trees: { gone: join(root, 'nope') } })))).rejects.toMatchObject({
    code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    message: expect.stringMatching(/^deploy: reading tree gone \(.*nope\): not found/),
  });
  write('file.yaml', 'a: 1\n');
  await expect(collect(new FsDeploySource(deploySchema.parse({ trees: { f: join(root, 'file.yaml') } })))).rejects.toThrow(/tree f .* is not a directory/);
});
