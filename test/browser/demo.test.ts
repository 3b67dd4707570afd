/**
 * The demo's own report and checklist in real Chromium, with hostile strings seeded into
 * the sandbox (an audit instance name, an auth-failure client, an SSM command parameter
 * name, an API key id): they show as text, no script runs, nothing overflows 1280 px,
 * both pages print to PDF, and screenshots land in test-output/screenshots/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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
