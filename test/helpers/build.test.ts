/**
 * CLI-level tests never run a stale dist/: the jest run rebuilds it when a source is newer
 * (test/global-setup.ts), and the CLI tests check it again before forking bin/aegis-audit.js.
 */
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expectFreshBuild, staleBuildOutputs } from './build';

function file(root: string, rel: string, mtimeSec: number): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, '// x\n');
  utimesSync(p, mtimeSec, mtimeSec);
}

test('a source newer than its compiled file, or without one, makes the build stale', () => {
  const root = mkdtempSync(join(tmpdir(), 'stale-build-'));
  file(root, 'src/cli.ts', 1000);
  file(root, 'dist/src/cli.js', 2000);
  file(root, 'checks/a-check.ts', 1000);
  file(root, 'dist/checks/a-check.js', 2000);
  expect(staleBuildOutputs(root)).toEqual([]);
  expect(() => expectFreshBuild(root)).not.toThrow();

  file(root, 'checks/a-check.ts', 3000); // edited after the build
  file(root, 'src/core/new-module.ts', 1000); // never built
  file(root, 'src/core/types.d.ts', 5000); // declarations are not compiled
  expect(staleBuildOutputs(root)).toEqual(['checks/a-check.ts', 'src/core/new-module.ts']);
  expect(() => expectFreshBuild(root)).toThrow(/^dist\/ is older than 2 source file\(s\) \(checks\/a-check\.ts, src\/core\/new-module\.ts\): run `npm run build`/);
});

test('in this run, dist/ is not older than any source (the run rebuilt it if it was)', () => {
  expect(staleBuildOutputs()).toEqual([]);
});
