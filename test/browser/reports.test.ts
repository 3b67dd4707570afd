/**
 * The HTML outputs in a real Chromium (Debian's `chromium`, driven by playwright-core):
 * hostile strings show as text and no script runs, nothing overflows a 1280 px viewport,
 * printing to PDF works, and screenshots land in test-output/screenshots/.
 *
 * Chromium is required, not optional: without /usr/bin/chromium these tests FAIL (CI
 * installs it with `apt-get install chromium`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import { registry } from '../../checks';
import { CHROMIUM, launchChromium, openFile, type Opened } from './chromium';
import { CHECKLIST } from '../../src/core/checklist';
import { renderChecklist } from '../../src/outputs/checklist';
import { renderHtmlReport } from '../../src/outputs/html';
import { formatJunit } from '../../src/outputs/junit';
import type { Attestation } from '../../src/outputs/attestations';
import { XSS_ATTR, XSS_IMG, XSS_SCRIPT, sampleMetas, sampleReport, syntheticReport } from '../outputs/fixtures';

const OUT = resolve(__dirname, '..', '..', 'test-output');
const PAGES = join(OUT, 'browser');
const SHOTS = join(OUT, 'screenshots');
const NOW = new Date('2026-11-22T12:00:00Z');

// The callbacks below run in the page; these are the few DOM shapes they use (the project's
// lib has no DOM, deliberately: only these callbacks ever run in a browser).
interface El {
  attributes: ArrayLike<{ name: string }> & Iterable<{ name: string }>;
  scrollWidth: number;
  clientWidth: number;
  tagName: string;
  className: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
}
interface Doc {
  querySelectorAll(selector: string): ArrayLike<El> & Iterable<El>;
  querySelector(selector: string): El | null;
  documentElement: El;
  body: { innerText: string };
}
type PageGlobals = { document: Doc; DOMParser: new () => { parseFromString(text: string, type: string): Doc } } & Record<string, unknown>;

let browser: Browser;
const files: Record<'report' | 'checklist' | 'big', string> = { report: '', checklist: '', big: '' };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser tests need Debian's chromium (apt-get install -y chromium); they are not skipped`);
  }
  mkdirSync(PAGES, { recursive: true });
  mkdirSync(SHOTS, { recursive: true });
  const report = sampleReport();
  const previous = sampleReport({ runId: 'run-0001', finishedAt: '2026-11-21T10:00:05.000Z', results: sampleReport().results.slice(1) });
  const attestations: Attestation[] = [
    { item: 'auth-failure-alerting', by: `mallory ${XSS_IMG}`, at: '2026-10-01T00:00:00.000Z', evidence: `https://wiki.example.com/${XSS_ATTR}`, expires: '2027-01-01T00:00:00.000Z' },
    { item: 'rotation-procedures-tested', by: 'old-bob', at: '2026-01-01T00:00:00.000Z', evidence: 'https://wiki.example.com/drill', expires: '2026-06-01T00:00:00.000Z' },
  ];
  files.report = join(PAGES, 'report.html');
  files.checklist = join(PAGES, 'checklist.html');
  files.big = join(PAGES, 'report-10000.html');
  const sev = (critical: number, high: number, medium: number) => ({ critical, high, medium, low: 0, info: 0 });
  const trend = [
    ...Array.from({ length: 11 }, (_, i) => ({ runId: `run-t${i}`, finishedAt: new Date(Date.UTC(2026, 10, 11 + i, 10)).toISOString(), open: sev(i % 3, (i * 2) % 5, i % 2) })),
    { runId: report.runId, finishedAt: report.finishedAt, open: sev(4, 2, 0) },
  ];
  // Built-in runbook paths, linked relative to the page's folder as a written report does.
  const metas = new Map([...sampleMetas()].map(([id, m]) => [id, { ...m, runbook: registry.has(id) ? `docs/runbooks/${id}.md` : m.runbook }]));
  writeFileSync(files.report, renderHtmlReport(report, { metas, previous, trend, reportDir: PAGES }));
  writeFileSync(files.checklist, renderChecklist(report, { metas: sampleMetas(), attestations, now: NOW }));
  writeFileSync(files.big, renderHtmlReport(syntheticReport(10_000)));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

function open(file: string): Promise<Opened> {
  return openFile(browser, file);
}

/** No script ran, nothing active is in the DOM, and the page asked for nothing but itself. */
async function expectInert(o: Opened, file: string): Promise<void> {
  // Give an injected handler (img onerror) a chance to fire before we look.
  await o.page.waitForTimeout(200);
  const state = await o.page.evaluate(() => {
    const w = globalThis as unknown as PageGlobals;
    const document = w.document;
    const withHandlers = [...document.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => a.name.toLowerCase().startsWith('on'))).length;
    return {
      globals: [w.__xss_script, w.__xss_img, w.__xss_attr],
      active: document.querySelectorAll('script, img, iframe, object, embed, link, base, form, meta[http-equiv="refresh"]').length,
      withHandlers,
    };
  });
  expect(state).toEqual({ globals: [undefined, undefined, undefined], active: 0, withHandlers: 0 });
  expect(o.dialogs).toEqual([]);
  expect(o.requests).toEqual([pathToFileURL(file).href]);
}

async function expectNoOverflow(page: Page): Promise<void> {
  const m = await page.evaluate(() => {
    const document = (globalThis as unknown as PageGlobals).document;
    const clipped = [...document.querySelectorAll('td, th, p, dd, li, h1, h2, h3, .finding-head')]
      .filter((el) => el.scrollWidth > el.clientWidth + 1)
      .map((el) => `${el.tagName}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`)
      .slice(0, 5);
    return { scrollWidth: document.documentElement.scrollWidth, clipped };
  });
  expect(m.clipped).toEqual([]);
  expect(m.scrollWidth).toBeLessThanOrEqual(1280);
}

describe('HTML report in Chromium', () => {
  it('shows hostile strings as text and runs no script', async () => {
    const o = await open(files.report);
    try {
      await expectInert(o, files.report);
      const text = await o.page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.innerText);
      expect(text).toContain(XSS_SCRIPT);
      expect(text).toContain(XSS_IMG);
      expect(text).toContain(XSS_ATTR);
      expect(await o.page.textContent('#overall')).toBe('FAIL');
      expect(await o.page.locator('article.finding').count()).toBe(8);
      expect(await o.page.locator('article.finding.is-waived').count()).toBe(1);
    } finally {
      await o.close();
    }
  });

  it('fits a 1280 px viewport (long resources and evidence wrap), prints to PDF, and is screenshotted', async () => {
    const o = await open(files.report);
    try {
      await expectNoOverflow(o.page);
      await o.page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
      const pdf = await o.page.pdf({ format: 'A4', printBackground: true });
      expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      expect(pdf.length).toBeGreaterThan(10_000);
      writeFileSync(join(SHOTS, 'report.pdf'), pdf);
      expect(readFileSync(join(SHOTS, 'report.png')).subarray(1, 4).toString('latin1')).toBe('PNG');
      // The print stylesheet hides the navigation.
      await o.page.emulateMedia({ media: 'print' });
      expect(await o.page.locator('nav.toc').isVisible()).toBe(false);
    } finally {
      await o.close();
    }
  });

  it('shows the new parts: fix-first box, severity and trend charts, the severity legend, collapsible findings (screenshotted)', async () => {
    const o = await open(files.report);
    try {
      const box = o.page.locator('#fix-first');
      expect(await box.locator('li.fix').count()).toBe(6);
      expect(await box.locator('li.fix').first().innerText()).toContain('Fix: Fix historical-keys.');
      await box.screenshot({ path: join(SHOTS, 'report-fix-first.png') });
      expect(await o.page.locator('#chart-severity svg g[data-severity]').count()).toBe(5);
      expect(await o.page.locator('#chart-trend svg g.run').count()).toBe(12);
      await o.page.locator('#summary').screenshot({ path: join(SHOTS, 'report-summary-charts.png') });
      expect(await o.page.locator('p.legend').innerText()).toContain('The severity beside a check is its ceiling');
      // Native <details>: a collapsed check opens on a click, with no script on the page.
      const notes = o.page.locator('#check-internal-secret-drift details.findings');
      expect(await notes.getAttribute('open')).toBeNull();
      expect(await o.page.locator('#check-internal-secret-drift article.finding').isVisible()).toBe(false);
      await notes.locator('summary').click();
      expect(await o.page.locator('#check-internal-secret-drift article.finding').isVisible()).toBe(true);
      await o.page.locator('#check-signing-key-source').screenshot({ path: join(SHOTS, 'report-check-expanded.png') });
      // The runbook link opens the runbook file from the report's folder.
      const href = await o.page.locator('#check-historical-keys p.runbook a').evaluate((a) => (a as unknown as { href: string }).href);
      expect(href.startsWith('file://')).toBe(true);
      expect(readFileSync(fileURLToPath(href), 'utf8')).toMatch(/^# historical-keys/);
    } finally {
      await o.close();
    }
  });

  it('prints every finding, collapsed or not', async () => {
    const o = await open(files.report);
    try {
      await o.page.emulateMedia({ media: 'print' });
      expect(await o.page.locator('#check-internal-secret-drift article.finding').isVisible()).toBe(true);
    } finally {
      await o.close();
    }
  });

  it('a 10 000-finding report loads, stays inert and fits 1280 px, with every check collapsed and reachable from the contents', async () => {
    const o = await open(files.big);
    try {
      expect(await o.page.locator('article.finding').count()).toBe(10_000);
      await expectInert(o, files.big);
      expect(await o.page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
      expect(await o.page.locator('details.findings').count()).toBe(10);
      expect(await o.page.locator('details.findings[open]').count()).toBe(0);
      expect(await o.page.locator('article.finding:visible').count()).toBe(0);
      expect(await o.page.locator('nav.toc a').count()).toBe(10);
      // The page a reader lands on: summary, fix-first, contents — not ten thousand findings.
      const height = await o.page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollHeight: number } } }).document.documentElement.scrollHeight);
      expect(height).toBeLessThan(12_000);
      await o.page.screenshot({ path: join(SHOTS, 'report-10000.png'), fullPage: true });
    } finally {
      await o.close();
    }
  }, 120_000);
});

describe('checklist in Chromium', () => {
  it('renders every item, inert, within 1280 px; prints to PDF; is screenshotted', async () => {
    const o = await open(files.checklist);
    try {
      await expectInert(o, files.checklist);
      expect(await o.page.locator('section.item').count()).toBe(CHECKLIST.length);
      expect(await o.page.textContent('#item-auth-failure-alerting .item-status')).toBe('PASS');
      expect(await o.page.textContent('#item-rotation-procedures-tested .item-status')).toBe('FAIL');
      expect(await o.page.textContent('#item-strong-auth-enforced .item-status')).toBe('NOT EVALUATED');
      expect(await o.page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.innerText)).toContain(`mallory ${XSS_IMG}`);
      await expectNoOverflow(o.page);
      await o.page.screenshot({ path: join(SHOTS, 'checklist.png'), fullPage: true });
      const pdf = await o.page.pdf({ format: 'A4', printBackground: true });
      expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      writeFileSync(join(SHOTS, 'checklist.pdf'), pdf);
    } finally {
      await o.close();
    }
  });
});

describe('JUnit XML in a real XML parser', () => {
  it("parses with Chromium's DOMParser and has the report's counts", async () => {
    const report = sampleReport();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const r = await page.evaluate((xml) => {
        const { DOMParser } = globalThis as unknown as PageGlobals;
        const doc = new DOMParser().parseFromString(xml, 'application/xml');
        return {
          error: doc.querySelector('parsererror')?.textContent ?? null,
          testcases: doc.querySelectorAll('testsuite > testcase').length,
          failures: doc.querySelectorAll('testcase > failure').length,
          errors: doc.querySelectorAll('testcase > error').length,
          skipped: doc.querySelectorAll('testcase > skipped').length,
          errorMessage: doc.querySelector('testcase > error')?.getAttribute('message'),
        };
      }, formatJunit(report));
      expect(r).toEqual({
        error: null,
        testcases: report.results.length,
        failures: report.summary.fail,
        errors: report.summary.error,
        skipped: report.summary.skipped,
        errorMessage: `postgres: connection refused ${XSS_SCRIPT}`,
      });
    } finally {
      await context.close();
    }
  });
});
