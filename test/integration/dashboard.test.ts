// The dashboard end to end: the real server (SQLite + memory cache behind a ChaosCache) on a real
// socket, headless Debian Chromium driven by playwright-core. Traffic is sent over HTTP from the
// test; the page must show it, raise the red banner when cache failures cross the alert
// threshold, and show the A–E counts after an audit. Screenshots go to test-results/ (git-ignored).
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, startDashboardServer, text, waitForText, type Browser, type DashboardServer } from '../helpers/dashboard-fixture.js';
import { CHROMIUM_PATH, needProgram } from '../helpers/services.js';

const OUT_DIR = 'test-results';

/** The slice of the browser's globals these tests read (tsconfig has no DOM lib: the rest is Node). */
interface BrowserGlobals {
  sessionStorage: { getItem(key: string): string | null };
  getComputedStyle(element: unknown): { backgroundColor: string };
}
const NS = 'dash';

describe('dashboard in Chromium', needProgram('Chromium', CHROMIUM_PATH), () => {
  let server: DashboardServer;
  let browser: Browser;

  before(async () => {
    // Alert at 20% of writes with a failed cache step, judged once 10 writes are in the window.
    server = await startDashboardServer({ engine: { leaseTtl: '1s', alert: { cacheFailureRate: 0.2, minSamples: 10, window: '5m' } } });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('serves the page with a strict CSP, and the stats only with the token', async () => {
    const response = await fetch(`${server.url}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(await response.text(), /<script>|<style>| on[a-z]+=/i, 'no inline script, style or handler');
    for (const [path, type] of [
      ['/dashboard/dashboard.js', /^text\/javascript/],
      ['/dashboard/uPlot.iife.min.js', /^text\/javascript/],
      ['/dashboard/uPlot.min.css', /^text\/css/],
      ['/dashboard/dashboard.css', /^text\/css/],
    ] as const) {
      const asset = await fetch(server.url + path);
      assert.equal(asset.status, 200, path);
      assert.match(asset.headers.get('content-type') ?? '', type, path);
      assert.ok(asset.headers.get('cache-control'), path);
      const etag = asset.headers.get('etag');
      assert.ok(etag, path);
      assert.equal((await fetch(server.url + path, { headers: { 'If-None-Match': etag } })).status, 304, path);
    }
    assert.equal((await fetch(`${server.url}/v1/stats`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/audit`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${server.url}/dashboard/nope.js`)).status, 401, 'only the known files are public');
  });

  it('asks for the token on a 401, then shows the numbers, and they move with traffic', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/`);
    await page.getByTestId('token-form').waitFor({ state: 'visible' });
    await page.getByTestId('token-input').fill(server.token);
    await page.getByTestId('token-input').press('Enter');
    await waitForText(page, 'status', (t) => t.includes('updated'));
    assert.equal(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).sessionStorage.getItem('lockstep.token')), server.token);
    assert.equal(await text(page, 'writes'), '0');
    assert.equal(await text(page, 'hit-ratio'), '–');

    for (let i = 0; i < 40; i++) await server.send('PUT', `/v1/kv/${NS}/k${i}`, { n: i });
    for (let i = 0; i < 60; i++) await server.send('GET', `/v1/kv/${NS}/k${i % 40}`);
    for (let i = 0; i < 20; i++) await server.send('GET', `/v1/kv/${NS}/absent${i}`);

    await waitForText(page, 'writes', (t) => t === '40');
    await waitForText(page, 'reads', (t) => t === '80');
    const { json: stats } = await server.send('GET', '/v1/stats');
    assert.equal(stats.writes, 40);
    assert.equal(stats.reads, 80);
    assert.ok(stats.hitRatio > 0 && stats.hitRatio < 1, `hit ratio ${stats.hitRatio}: hits on written keys, misses on absent ones`);
    await waitForText(page, 'hit-ratio', (t) => t === `${(stats.hitRatio * 100).toFixed(1)} %`);
    for (const id of ['read-p50', 'read-p99', 'read-cache-p50', 'read-cache-p99', 'read-store-p50', 'read-store-p99', 'write-p50', 'write-p99', 'store-p50', 'store-p99', 'cache-p50', 'cache-p99']) {
      assert.match(await text(page, id), /^\d+\.\d+$/, id);
    }
    assert.equal(await text(page, 'failures'), '0');
    assert.equal(await page.getByTestId('alert-banner').isVisible(), false);
    // Three charts were drawn by uPlot.
    assert.equal(await page.locator('.chart .uplot canvas').count(), 3);
  });

  it('shows the red alert banner when cache failures cross the threshold', async () => {
    const { page } = browser;
    // 40 good writes so far; 20 more whose cache step fails: 20 / 60 = 33% >= 20%.
    server.cache.faults.always('completeWrite', { kind: 'throw', when: 'before' });
    try {
      for (let i = 0; i < 20; i++) await server.send('PUT', `/v1/kv/${NS}/failing${i}`, { i });
    } finally {
      server.cache.faults.clear();
    }
    const banner = page.getByTestId('alert-banner');
    // The page polls once a second, and on a loaded machine a poll can land mid-loop (the banner
    // then shows e.g. 23.1 % = 12 / 52): wait for the state after the loop, not for the first poll.
    await waitForText(page, 'alert-rate', (t) => t === '33.3 %');
    await waitForText(page, 'alert-banner', (t) => t.includes('Cache failure alert: 33.3 %'));
    assert.equal(await banner.isVisible(), true);
    assert.match(await banner.innerText(), /Cache failure alert: 33\.3 %/);
    assert.equal(await banner.evaluate((el) => (globalThis as unknown as BrowserGlobals).getComputedStyle(el).backgroundColor), 'rgb(220, 38, 38)');
    await waitForText(page, 'cache-failures', (t) => t === '20');
    assert.equal(await text(page, 'failures'), '20');
    assert.equal(await text(page, 'db-failures'), '0');
    assert.equal(await text(page, 'alert-rate'), '33.3 %');
    await mkdir(OUT_DIR, { recursive: true });
    await page.screenshot({ path: `${OUT_DIR}/dashboard-alert.png`, fullPage: true });
  });

  it('shows the A–E counts after an audit run from the page', async () => {
    const { page } = browser;
    assert.equal(await text(page, 'audit-C'), '–');
    await page.getByTestId('audit-run').click();
    await waitForText(page, 'audit-time', (t) => t.startsWith('At '));
    const { json: stats } = await server.send('GET', '/v1/stats');
    const counts = stats.audit.counts as Record<string, number>;
    // 40 keys written through (C); 20 committed whose cache step failed: their write lease serves nothing (B).
    assert.equal(counts.C, 40);
    assert.equal(counts.B, 20);
    assert.equal(counts.D, 0);
    assert.equal(counts.E, 0);
    for (const state of ['A', 'B', 'C', 'D', 'E']) assert.equal(await text(page, `audit-${state}`), String(counts[state]), state);
    assert.match(await text(page, 'audit-time'), /keys in 1 namespace/);
    await page.screenshot({ path: `${OUT_DIR}/dashboard.png`, fullPage: true });
  });

  it('ran without a script error or a CSP violation', () => {
    // The 401 of the first stats call is logged by Chromium as a failed resource load: expected.
    const unexpected = browser.errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
