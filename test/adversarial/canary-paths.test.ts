/**
 * A planted secret must not share an 8-character piece with the test's own temp paths.
 * `config-files.test.ts` planted `config-files-internal-value` in a directory made by
 * `mkdtemp('adv-config-')`: whenever mkdtemp's first random character was `f`, the path held
 * the piece `config-f`, and the daemon — scrubbing every piece of every secret it read, as
 * it must — logged the config as `/tmp/adv-[redacted]Puo8h/reload.yaml`, failing the test
 * that looked for the path (one run in 62, only ever in a full run by chance). This checks
 * every literal secret a test writes into an env file against every mkdtemp prefix of the
 * same file, for all the characters mkdtemp may pick, so a collision fails every run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { KnownSecrets } from '../../src/core/secret';
import { tempPathCollisions } from './helpers';

const TEST_ROOT = join(__dirname, '..');

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : /\.ts$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

/** `mkdtemp(Sync)(join(tmpdir(), 'prefix'))` */
const MKDTEMP_RE = /mkdtemp(?:Sync)?\(\s*join\(\s*tmpdir\(\)\s*,\s*'([^']+)'\s*\)/g;
/** A `NAME=value` line in a string literal: what a test writes into an env file. */
const PLANTED_RE = /['"`](?:[^'"`\n]*\\n)?[A-Z][A-Z0-9_]*=([^'"`\\\n$]{8,})\\n/g;

test('the scrubber redacts the piece a temp path shares with a secret: the failure, reproduced', () => {
  const known = new KnownSecrets();
  known.add('config-files-internal-value');
  expect(known.scrub('/tmp/adv-config-fPuo8h/reload.yaml')).toBe('/tmp/adv-[redacted]Puo8h/reload.yaml');
  expect(tempPathCollisions('config-files-internal-value', '/tmp', 'adv-config-')).toEqual(['config-f', 'onfig-fi', 'nfig-fil', 'fig-file', 'ig-files']);
  expect(tempPathCollisions('config_files_internal_value', '/tmp', 'adv-config-')).toEqual([]);
});

test('no literal secret a test plants can share a piece with that test\'s mkdtemp paths', () => {
  const files = testFiles(TEST_ROOT).map((f) => ({ f, text: readFileSync(f, 'utf8') }));
  const planted = files.flatMap(({ f, text }) => [...text.matchAll(PLANTED_RE)].map((m) => ({ f, value: m[1]! })));
  // The scan finds what it is for: the env files the adversarial and daemon suites plant.
  expect(planted.map((p) => relative(TEST_ROOT, p.f))).toEqual(expect.arrayContaining([join('adversarial', 'config-files.test.ts'), join('adversarial', 'reload.test.ts')]));
  const collisions: string[] = [];
  for (const { f, value } of planted) {
    const text = files.find((x) => x.f === f)!.text;
    for (const [, prefix] of text.matchAll(MKDTEMP_RE)) {
      for (const parent of new Set([tmpdir(), '/tmp'])) {
        for (const piece of tempPathCollisions(value, parent, prefix!)) collisions.push(`${relative(TEST_ROOT, f)}: ${JSON.stringify(value)} shares ${JSON.stringify(piece)} with ${parent}/${prefix}XXXXXX`);
      }
    }
  }
  expect(collisions).toEqual([]);
});
