/**
 * Debian's Chromium driven by playwright-core, as the browser tests use it: headless, no
 * background networking (this machine's network is closed), and pages opened at 1280 px
 * with every dialog and request recorded.
 */
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { requireBinary } from '../helpers/binaries';

export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  requireBinary(CHROMIUM, 'chromium');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface Opened {
  page: Page;
  dialogs: string[];
  requests: string[];
  close: () => Promise<void>;
}

/** Opens a local file at a 1280 px viewport, recording dialogs (dismissed) and requests. */
export async function openFile(browser: Browser, file: string): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  const requests: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('request', (r) => requests.push(r.url()));
  // A functional bound, not a speed figure: a 10 MB report on a loaded 2-core machine can take
  // longer than playwright's 30 s default to load.
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 180_000 });
  return { page, dialogs, requests, close: () => context.close() };
}
