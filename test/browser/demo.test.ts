/**
 * The demo's own report and checklist in real Chromium, with hostile strings seeded into
 * the sandbox (an audit instance name, an auth-failure client, an SSM command parameter
 * name, an API key id): they show as text, no script runs, nothing overflows 1280 px,
 * both pages print to PDF, and screenshots land in test-output/screenshots/.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchChromium, openFile } from './chromium';
import { registry } from '../../checks';
import { startDemo, type DemoResult } from '../../src/app/demo';
import { adminUrl } from '../helpers/pg';

const SHOTS = resolve(__dirname, '..', '..', 'test-output', 'screenshots');
type PageWindow = {
  __pwned?: unknown;
  document: {
    body: { innerText: string };
    documentElement: { scrollWidth: number };
    querySelectorAll(s: string): ArrayLike<{ attributes: Iterable<{ name: string }> }> & Iterable<{ attributes: Iterable<{ name: string }> }>;
  };
};

let out: string;
let demo: DemoResult;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  out = mkdtempSync(join(tmpdir(), 'demo-browser-'));
  demo = await startDemo(registry, { out, rows: 300, violations: 'all', hostile: true, adminUrl: adminUrl() });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await demo?.sandbox.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

test('the hostile demo still finds exactly its manifest', () => {
  expect(demo.sandbox.hostileMarkers().length).toBeGreaterThanOrEqual(3);
  expect({ missed: demo.comparison.missed, extra: demo.comparison.extra }).toEqual({ missed: [], extra: [] });
});

test.each([
  ['report.html', 'demo-report'],
  ['checklist.html', 'demo-checklist'],
])('%s renders hostile strings as text, runs nothing, fits 1280 px and prints', async (file, shot) => {
  const path = join(out, file);
  expect(existsSync(path)).toBe(true);
  const { page, dialogs, requests, close } = await openFile(browser, path);
  try {
    await page.waitForTimeout(200); // let an injected onerror fire, if there were one
    const state = await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      const handlers = [...w.document.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => a.name.toLowerCase().startsWith('on'))).length;
      return {
        pwned: w.__pwned ?? null,
        active: w.document.querySelectorAll('script, img, iframe, object, embed').length,
        handlers,
        width: w.document.documentElement.scrollWidth,
        text: w.document.body.innerText,
      };
    });
    expect({ pwned: state.pwned, active: state.active, handlers: state.handlers, dialogs }).toEqual({ pwned: null, active: 0, handlers: 0, dialogs: [] });
    expect(requests).toEqual([pathToFileURL(path).href]);
    expect(state.width).toBeLessThanOrEqual(1280);
    if (file === 'report.html') {
      // Every hostile string that reached a finding is on the page, verbatim, as text.
      for (const marker of demo.sandbox.hostileMarkers()) expect(state.text).toContain(marker);
    }
    await page.screenshot({ path: join(SHOTS, `${shot}.png`), fullPage: true });
    const pdf = await page.pdf({ format: 'A4', printBackground: true });
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    writeFileSync(join(SHOTS, `${shot}.pdf`), pdf);
  } finally {
    await close();
  }
});

test("the demo's new parts on real findings: fix-first, charts and collapsible checks in the report, runbook links in both pages that open the runbook from the written file (screenshotted)", async () => {
  const links: { page: string; href: string; text: string }[] = [];
  for (const file of ['report.html', 'checklist.html']) {
    const path = join(out, file);
    const { page, close } = await openFile(browser, path);
    try {
      for (const a of await page.locator('a[href]').all()) {
        const href = (await a.getAttribute('href')) ?? '';
        if (/runbooks\//.test(href)) links.push({ page: file, href: await a.evaluate((el) => (el as unknown as { href: string }).href), text: await a.innerText() });
      }
      if (file === 'report.html') {
        // The demo seeds critical and high findings: the box lists them, most severe first.
        const fixes = page.locator('#fix-first li.fix');
        expect(await fixes.count()).toBeGreaterThanOrEqual(2);
        expect(await fixes.first().getAttribute('class')).toContain('sev-critical');
        await page.locator('#fix-first').screenshot({ path: join(SHOTS, 'demo-report-fix-first.png') });
        await page.locator('#summary').screenshot({ path: join(SHOTS, 'demo-report-summary.png') });
        // Every check with findings holds them in a native <details>; opening one needs no script.
        const failing = page.locator('section.check.status-fail');
        expect(await failing.count()).toBeGreaterThanOrEqual(5);
        expect(await page.locator('section.check.status-fail details.findings').count()).toBe(await failing.count());
        const closed = page.locator('section.check details.findings:not([open])').first();
        if ((await closed.count()) > 0) {
          await closed.locator('summary').click();
          expect(await closed.getAttribute('open')).not.toBeNull();
        }
        // Evidence as key/value rows, not a JSON string.
        expect(await page.locator('table.evidence th').count()).toBeGreaterThan(0);
        await failing.first().screenshot({ path: join(SHOTS, 'demo-report-check.png') });
      } else {
        await page.locator('section.item').first().screenshot({ path: join(SHOTS, 'demo-checklist-item.png') });
      }
    } finally {
      await close();
    }
  }
  // Both pages link the runbooks, and every link opens the check's runbook from where the file was written.
  expect(new Set(links.map((l) => l.page))).toEqual(new Set(['report.html', 'checklist.html']));
  const broken = links.filter((l) => !l.href.startsWith('file://') || !existsSync(fileURLToPath(l.href)) || !readFileSync(fileURLToPath(l.href), 'utf8').startsWith('# ')).map((l) => `${l.page}: ${l.text} -> ${l.href}`);
  expect(broken).toEqual([]);
}, 120_000);
