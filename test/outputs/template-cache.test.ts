/**
 * The build's precompiled templates: used by the compiled code only when they are of exactly
 * the templates on disk, and rendering with them gives the same page as compiling from disk,
 * without loading handlebars' compiler.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expectFreshBuild, REPO_ROOT } from '../helpers/build';
import { renderHtmlReport } from '../../src/outputs/html';
import { TEMPLATES_DIR } from '../../src/outputs/render';
import { precompiledFor, writePrecompiled } from '../../src/outputs/template-cache';
import { sampleMetas, sampleReport, XSS_SCRIPT, finding, result, buildReport } from './fixtures';

const DIST_FILE = resolve(REPO_ROOT, 'dist/src/outputs/templates.precompiled.js');
let dir: string;
beforeAll(() => {
  expectFreshBuild();
  dir = mkdtempSync(join(tmpdir(), 'template-cache-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the build wrote the templates of templates/; other templates are not taken for them', () => {
  expect(precompiledFor(TEMPLATES_DIR, DIST_FILE)?.templates).toHaveProperty('report');
  const edited = join(dir, 'edited');
  cpSync(TEMPLATES_DIR, edited, { recursive: true });
  expect(precompiledFor(edited, DIST_FILE)).toBeDefined();
  appendFileSync(join(edited, 'partials', 'finding.hbs'), '\n');
  expect(precompiledFor(edited, DIST_FILE)).toBeUndefined();
  const own = join(dir, 'own.js');
  writePrecompiled(edited, own);
  expect(Object.keys(precompiledFor(edited, own)?.partials ?? {})).toContain('finding');
  const broken = join(dir, 'broken.js');
  writeFileSync(broken, 'this is not javascript');
  expect(precompiledFor(edited, broken)).toBeUndefined();
});

test('the compiled code renders the same page from the precompiled templates, without the compiler', () => {
  const report = buildReport([result('receipt-chain', 'Receipt chain', 'critical', 'fail', [finding('receipt-chain', 'critical', 'row=7', XSS_SCRIPT)])]);
  const reports = [sampleReport(), report];
  const input = join(dir, 'reports.json');
  writeFileSync(input, JSON.stringify({ reports, metas: [...sampleMetas()] }));
  const script = `
    const parsed = JSON.parse(require('node:fs').readFileSync(${JSON.stringify(input)}, 'utf8'));
    const reports = parsed.reports;
    const metas = new Map(parsed.metas);
    const { renderHtmlReport } = require(${JSON.stringify(resolve(REPO_ROOT, 'dist/src/outputs/html.js'))});
    const pages = reports.map((r) => renderHtmlReport(r, { metas }));
    const loaded = () => Object.keys(require.cache).filter((k) => /handlebars[\\\\/]dist[\\\\/]cjs[\\\\/]handlebars[\\\\/]compiler/.test(k));
    const compiler = loaded();
    require('handlebars');
    process.stdout.write(JSON.stringify({ pages, compiler, withLibrary: loaded().length }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as { pages: string[]; compiler: string[]; withLibrary: number };
  expect(out.compiler).toEqual([]);
  expect(out.withLibrary).toBeGreaterThan(0);
  // Under ts-jest there is no precompiled file beside the sources: these pages are compiled from disk.
  expect(out.pages).toEqual(reports.map((r) => renderHtmlReport(r, { metas: sampleMetas() })));
  expect(out.pages[1]).not.toContain(XSS_SCRIPT);
});
