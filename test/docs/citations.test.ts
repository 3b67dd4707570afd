/**
 * User-facing text stands alone: README, docs/, the report templates, alert rules, every
 * check's metadata and messages, and the checklist cite the Aegis runbooks by title and
 * section — never by an internal number ("seed 004"), a file name, or a path outside this
 * repository. Files are discovered, not listed, so new checks, runbooks and docs are covered
 * as they land; a failure names the place and says what to write instead.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { registry } from '../../checks';
import { CHECKLIST } from '../../src/core/checklist';
import { HOW, TITLES, USER_FACING, EVERYWHERE, violations } from '../helpers/citations';

const ROOT = join(__dirname, '..', '..');
function walk(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

const exists = (p: string) => {
  try {
    return statSync(p).isFile() || statSync(p).isDirectory();
  } catch {
    return false;
  }
};

const userFacingFiles = [
  join(ROOT, 'README.md'),
  ...walk(join(ROOT, 'docs'), () => true),
  ...walk(join(ROOT, 'templates'), () => true),
  ...walk(join(ROOT, 'alerts'), () => true),
  ...['Dockerfile', 'package.json'].map((f) => join(ROOT, f)).filter(exists),
];
const codeFiles = ['src', 'checks', 'bin', 'bench', 'scripts']
  .map((d) => join(ROOT, d))
  .filter(exists)
  .flatMap((d) => walk(d, (f) => /\.(?:ts|js|mjs|sh)$/.test(f)));

test('the scan covers the user-facing files and the code', () => {
  expect(userFacingFiles.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(['README.md', 'docs/aegis-formats.md', 'docs/configuration.md', 'templates/report.hbs']));
  expect(codeFiles.some((f) => f.endsWith(join('src', 'cli.ts')))).toBe(true);
  for (const id of registry.keys()) expect(userFacingFiles).toContain(join(ROOT, 'docs', 'runbooks', `${id}.md`));
});

test('README, docs/, templates/ and alerts/ name no internal runbook number, file name or outside path', () => {
  const found = userFacingFiles.flatMap((f) => violations(readFileSync(f, 'utf8'), relative(ROOT, f), USER_FACING));
  expect(found).toEqual([]);
});

test('no source file (messages, remediation, comments) names an internal runbook number or an outside path', () => {
  const found = codeFiles.flatMap((f) => violations(readFileSync(f, 'utf8'), relative(ROOT, f), EVERYWHERE));
  expect(found).toEqual([]);
});

test('the built registry (titles, descriptions, remediation, messages, option docs) cites runbooks only by title', () => {
  const found: string[] = [];
  for (const [id, check] of registry) {
    let options = '';
    try {
      options = JSON.stringify(z.toJSONSchema(check.options, { io: 'input', unrepresentable: 'any' }));
    } catch {
      options = '';
    }
    const parts: Record<string, string> = {
      'meta.title': check.meta.title,
      'meta.description': check.meta.description,
      'meta.remediation': check.meta.remediation,
      messages: JSON.stringify(check.messages),
      options,
    };
    for (const [field, text] of Object.entries(parts)) found.push(...violations(text, `check ${id} ${field}`, USER_FACING));
  }
  expect(found).toEqual([]);
});

test('every checklist item cites an Aegis runbook by title (and nothing else forbidden)', () => {
  const found: string[] = [];
  for (const item of CHECKLIST) {
    found.push(...violations(`${item.title}\n${item.source}\n${item.attestation ?? ''}`, `checklist item ${item.id}`, USER_FACING));
    if (!TITLES.some((t) => item.source.includes(t))) found.push(`checklist item ${item.id}: source "${item.source}" names no Aegis runbook: ${HOW}`);
  }
  expect(found).toEqual([]);
});

test('every check runbook says which Aegis runbook it comes from, by title', () => {
  const missing = [...registry.values()]
    .map((c) => c.meta.runbook)
    .filter((p) => !TITLES.some((t) => readFileSync(join(ROOT, p), 'utf8').includes(t)))
    .map((p) => `${p} cites no Aegis runbook: add a "Why it matters" paragraph that ${HOW}`);
  expect(missing).toEqual([]);
});

test('the detector itself catches each forbidden form', () => {
  const bad = ['see seed 004, "What to audit" 1', 'Seeds 000 and 001', 'runbook 001', 'open ../shared/DESIGN.md', 'at /work/shared/runbooks', 'see DESIGN.md', 'secret-management.md'];
  for (const b of bad) expect({ b, hits: violations(b, 'x', USER_FACING).length > 0 }).toEqual({ b, hits: true });
  // The sandbox's PRNG seed is not a runbook number.
  expect(violations('building the sandbox deployment (seed 42, 5000 audit rows)', 'x', USER_FACING)).toEqual([]);
});
