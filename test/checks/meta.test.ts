/**
 * The check folder, the registry, the runbooks and the checklist agree: a check added
 * without registering it, a runbook or a valid checklist item fails here. Files are
 * discovered, not listed, so new checks are covered as they land.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { builtinChecks, registry } from '../../checks';
import { checkLoaders } from '../../checks/loaders';
import type { AnyCheck } from '../../src/core/define-check';
import { CHECKLIST, CHECKLIST_IDS } from '../../src/core/checklist';

const ROOT = join(__dirname, '..', '..');
const CHECKS_DIR = join(ROOT, 'checks');

const files = readdirSync(CHECKS_DIR, { withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') && d.name !== 'index.ts' && d.name !== 'loaders.ts')
  .map((d) => basename(d.name, '.ts'))
  .sort();

function load(id: string): AnyCheck {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(join(CHECKS_DIR, id)) as { default: AnyCheck }).default;
}

test('the files in checks/ are exactly the registry', () => {
  expect(files.length).toBeGreaterThan(0);
  expect([...registry.keys()].sort()).toEqual(files);
});

test('the loaders (each check\'s code on first use) load exactly the registry\'s checks, each its own', () => {
  expect(Object.keys(checkLoaders).sort()).toEqual([...registry.keys()]);
  for (const [id, load] of Object.entries(checkLoaders)) expect(load()).toBe(registry.get(id));
});

test('builtinChecks is alphabetised and holds each check once', () => {
  const ids = builtinChecks.map((c) => c.meta.id);
  expect(ids).toEqual([...ids].sort());
  expect(new Set(ids).size).toBe(ids.length);
});

test('every checklist item names only checks that exist', () => {
  const unknown = CHECKLIST.flatMap((i) => i.checks.filter((c) => !registry.has(c)).map((c) => `${i.id}: ${c}`));
  expect(unknown).toEqual([]);
});

test('every check that names a checklist item is named back by it, and no item lists a check that does not claim it', () => {
  for (const item of CHECKLIST) {
    for (const c of item.checks) expect({ item: item.id, check: c, claims: registry.get(c)?.meta.checklist.includes(item.id) }).toEqual({ item: item.id, check: c, claims: true });
  }
});

describe.each(files)('%s', (id) => {
  const check = load(id);

  test('its default export is the registered check, and meta.id is the file name', () => {
    expect(check?.meta?.id).toBe(id);
    expect(registry.get(id)).toBe(check);
  });

  test(`has its runbook at docs/runbooks/${id}.md`, () => {
    expect(check.meta.runbook).toBe(`docs/runbooks/${id}.md`);
    const path = join(ROOT, check.meta.runbook);
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, 'utf8')).toMatch(new RegExp(`^# .*${id}`, 'm'));
  });

  test('names only checklist items that exist, and those items list it back', () => {
    for (const item of check.meta.checklist) {
      expect({ item, exists: CHECKLIST_IDS.has(item) }).toEqual({ item, exists: true });
      expect(CHECKLIST.find((i) => i.id === item)?.checks).toContain(id);
    }
  });

  test('every message placeholder is a word, and the options default cleanly', () => {
    for (const text of Object.values(check.messages)) {
      for (const m of text.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) expect(m[1]).toMatch(/^[A-Za-z0-9_]+$/);
    }
    expect(check.options.safeParse({}).success).toBe(true);
  });
});
