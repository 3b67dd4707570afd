/**
 * docs/configuration.md is generated from the config schema (`npm run docs:config`), so every
 * key, type and default the loader accepts is on the page; these tests keep the committed page
 * equal to the schema, every key described, every object strict (a key not on the page is
 * refused), and every environment variable the code reads documented.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { z } from 'zod';
import { registry } from '../../checks';
import { CONFIG_DOCS, configKeys, renderConfigReference } from '../../src/config/reference';
import { configSchema } from '../../src/config/schema';
import { parseConfig } from '../../src/config/load';

const ROOT = join(__dirname, '..', '..');
const PAGE = join(ROOT, 'docs', 'configuration.md');
const FIX = 'edit CONFIG_DOCS in src/config/reference.ts (or .describe() the key in src/config/schema.ts), then run `npm run docs:config`';

test('docs/configuration.md is exactly what `aegis-audit config reference` generates from the schema', () => {
  const want = renderConfigReference(registry);
  const have = readFileSync(PAGE, 'utf8');
  if (have !== want) {
    const a = have.split('\n');
    const b = want.split('\n');
    const i = b.findIndex((l, n) => l !== a[n]);
    throw new Error(
      `docs/configuration.md is out of date with the config schema or the checks' options: run \`npm run docs:config\` and commit the result.\n` +
        `first difference at line ${i + 1}:\n  committed: ${a[i] ?? '(end of file)'}\n  generated: ${b[i] ?? '(end of file)'}`,
    );
  }
});

test('every key the schema accepts says what it means', () => {
  const keys = configKeys();
  expect(keys.length).toBeGreaterThan(50);
  const undocumented = keys.filter((k) => !k.meaning).map((k) => `${k.key}: no description — ${FIX}`);
  expect(undocumented).toEqual([]);
  const stale = Object.keys(CONFIG_DOCS)
    .filter((k) => !keys.some((x) => x.key === k))
    .map((k) => `CONFIG_DOCS['${k}'] describes a key the schema does not have — remove or rename it`);
  expect(stale).toEqual([]);
});

test('the page names the keys users were missing: Vault namespace, ca_file, max_attempts, and AEGIS_AUDIT_LOG_LEVEL', () => {
  const page = readFileSync(PAGE, 'utf8');
  for (const k of ['sources.secrets.vault.namespace', 'sources.secrets.vault.ca_file', 'sources.secrets.vault.max_attempts', 'plugins', 'AEGIS_AUDIT_LOG_LEVEL']) expect(page).toContain(`\`${k}\``);
});

type Def = { type: string; shape?: Record<string, z.ZodType>; catchall?: z.ZodType; innerType?: z.ZodType; valueType?: z.ZodType; element?: z.ZodType };
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

function objects(s: z.ZodType, path: string, out: { path: string; strict: boolean }[]): void {
  const d = defOf(s);
  if (d.innerType) return objects(d.innerType, path, out);
  if (d.type === 'object' && d.shape) {
    out.push({ path: path || '(top level)', strict: d.catchall !== undefined && defOf(d.catchall).type === 'never' });
    for (const [k, v] of Object.entries(d.shape)) objects(v, path ? `${path}.${k}` : k, out);
  } else if (d.type === 'record' && d.valueType) objects(d.valueType, `${path}.<key>`, out);
  else if (d.type === 'array' && d.element) objects(d.element, `${path}[]`, out);
}

test('every mapping of the schema is strict, so a key the page does not list is refused', () => {
  const all: { path: string; strict: boolean }[] = [];
  objects(configSchema, '', all);
  expect(all.length).toBeGreaterThan(10);
  expect(all.filter((o) => !o.strict).map((o) => `${o.path} accepts unknown keys: make it .strict()`)).toEqual([]);
  expect(() => parseConfig('deployment: p\nsources:\n  secrets:\n    vault: { address: "https://v:8200", token_env: T, namesapce: x }\n', 'a.yaml')).toThrow(
    /a\.yaml:4:\d+: sources\.secrets\.vault: unknown key "namesapce"/,
  );
});

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|js)$/.test(e.name) ? [join(dir, e.name)] : []));
}

test('every environment variable the code reads by name is on the page', () => {
  const page = readFileSync(PAGE, 'utf8');
  // The sandbox sets its own throwaway variables for its emulators; it is not the product's configuration.
  const code = [...files(join(ROOT, 'src')).filter((f) => !f.includes(join('src', 'sandbox'))), ...files(join(ROOT, 'bin')), ...files(join(ROOT, 'checks'))];
  const names = new Map<string, string>();
  for (const f of code) {
    for (const m of readFileSync(f, 'utf8').matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\])/g)) names.set(m[1] ?? m[2], relative(ROOT, f));
  }
  expect(names.has('AEGIS_AUDIT_LOG_LEVEL')).toBe(true);
  const missing = [...names].filter(([n]) => !page.includes(`\`${n}\``)).map(([n, f]) => `${n} (read in ${f}): add it to ENVIRONMENT in src/config/reference.ts, then run \`npm run docs:config\``);
  expect(missing).toEqual([]);
});
