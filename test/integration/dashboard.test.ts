// The dashboard end to end: the real server (SQLite + memory cache behind a ChaosCache) on a real
// socket, headless Debian Chromium driven by playwright-core. Traffic is sent over HTTP from the
// test; the page must show it under the seed's metric names, follow the namespace filter and the
// window choice, raise the red banner when cache failures cross the alert threshold, and show the
// A–E counts, their chart and the D examples after an audit. Screenshots go to test-results/.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Request } from 'playwright-core';
import { launchBrowser, startDashboardServer, text, waitForText, type Browser, type DashboardServer } from '../helpers/dashboard-fixture.js';
import { CHROMIUM_PATH, needProgram } from '../helpers/services.js';

const OUT_DIR = 'test-results';

/** The slice of the browser's globals these tests read (tsconfig has no DOM lib: the rest is Node). */
interface BrowserGlobals {
  sessionStorage: { getItem(key: string): string | null };
  getComputedStyle(element: unknown): { backgroundColor: string };
}
const NS = 'dash';
const OTHER = 'dash-other';
const SEED_NAMES = [
  'db_write_latency',
  'cache_write_latency',
  'write_through_total_latency',
  'cache_hits',
  'cache_misses',
  'write_through_db_failures',
  'write_through_cache_failures',
  'write_through_failures',
];

/** The x range a chart spans now, in seconds (the page writes it after each draw). */
async function chartRange(page: Browser['page'], testId: string): Promise<number> {
  return Number(await page.getByTestId(testId).getAttribute('data-range-seconds'));
}

describe('dashboard in Chromium', needProgram('Chromium', CHROMIUM_PATH), () => {
  let server: DashboardServer;
  let browser: Browser;
  const requests: Request[] = [];

  before(async () => {
    // Alert at 20% of writes with a failed cache step, judged once 10 writes are in the window.
    server = await startDashboardServer({ engine: { leaseTtl: '1s', alert: { cacheFailureRate: 0.2, minSamples: 10, window: '5m' } } });
    browser = await launchBrowser();
    browser.page.on('request', (request) => requests.push(request));
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
    assert.equal(await text(page, 'cache-hits'), '0');
    assert.equal(await text(page, 'cache-misses'), '0');
    const shown = await page.locator('body').innerText();
    for (const name of SEED_NAMES) assert.ok(shown.includes(name), `the page labels ${name}`);

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
    // The counts beside the ratio: 60 reads of written keys hit, 20 of absent ones missed.
    assert.equal(stats.counters.cache_hits, 60);
    assert.equal(stats.counters.cache_misses, 20);
    await waitForText(page, 'cache-hits', (t) => t === '60');
    await waitForText(page, 'cache-misses', (t) => t === '20');
    for (const id of ['hist-total-p99', 'hist-db-p99', 'hist-cache-p99']) await waitForText(page, id, (t) => /^≤ \d/.test(t));
    for (const id of ['read-p50', 'read-p99', 'read-cache-p50', 'read-cache-p99', 'read-store-p50', 'read-store-p99', 'write-p50', 'write-p99', 'store-p50', 'store-p99', 'cache-p50', 'cache-p99']) {
      assert.match(await text(page, id), /^\d+\.\d+$/, id);
    }
    assert.equal(await text(page, 'failures'), '0');
    assert.equal(await page.getByTestId('alert-banner').isVisible(), false);
    // Four charts were drawn by uPlot; the throughput chart plots the server's samples.
    assert.equal(await page.locator('.chart .uplot canvas').count(), 4);
    await page.waitForFunction(() => Number((globalThis as any).document.querySelector('[data-testid="chart-throughput"]').dataset.points) > 0, undefined, { timeout: 20_000 });
  });

  it('the namespace filter shows one namespace; an unknown one is a zero view that allocates nothing', async () => {
    const { page } = browser;
    for (let i = 0; i < 5; i++) await server.send('PUT', `/v1/kv/${OTHER}/o${i}`, { i });
    await server.send('GET', `/v1/kv/${OTHER}/o0`);
    await waitForText(page, 'writes', (t) => t === '45');
    const filter = page.getByTestId('namespace-filter');
    await filter.fill(OTHER);
    await filter.press('Enter');
    await waitForText(page, 'view-note', (t) => t === `namespace ${OTHER}`);
    await waitForText(page, 'writes', (t) => t === '5');
    assert.equal(await text(page, 'cache-hits'), '1');
    assert.equal(await text(page, 'cache-misses'), '0');
    assert.equal(await text(page, 'reads'), '1');

    const before = (await server.send('GET', '/v1/stats')).json;
    await filter.fill('nobody-here');
    await filter.press('Enter');
    await waitForText(page, 'view-note', (t) => t.startsWith('namespace nobody-here: no series'));
    await waitForText(page, 'writes', (t) => t === '0');
    assert.equal(await text(page, 'reads'), '0');
    assert.equal(await text(page, 'hit-ratio'), '–');
    const { json: zero } = await server.send('GET', '/v1/stats?namespace=nobody-here');
    assert.deepEqual(zero.view, { namespace: 'nobody-here', series: 'none' });
    assert.equal(zero.counters.writes, 0);
    assert.deepEqual(zero.history, []);
    const afterwards = (await server.send('GET', '/v1/stats')).json;
    assert.equal(afterwards.namespaces, before.namespaces, 'no engine was made for the unknown namespace');
    assert.ok(!afterwards.namespaceList.includes('nobody-here'));
    // A malformed name is refused by the server (and marked invalid by the page, which keeps its view).
    const bad = await fetch(`${server.url}/v1/stats?namespace=${encodeURIComponent('../x')}`, { headers: { Authorization: `Bearer ${server.token}` } });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'E_INVALID_NAMESPACE');

    await filter.fill('');
    await filter.press('Enter');
    await waitForText(page, 'view-note', (t) => t === 'all namespaces');
    await waitForText(page, 'writes', (t) => t === '45');
  });

  it('the window choice sets the charts\' time range', async () => {
    const { page } = browser;
    await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-testid="chart-throughput"]').dataset.rangeSeconds === '300', undefined, { timeout: 20_000 });
    for (const [choice, seconds] of [['1h', 3600], ['1m', 60], ['15m', 900], ['5m', 300]] as const) {
      await page.getByTestId('window').selectOption(choice);
      await page.waitForFunction(
        (want) => ['chart-throughput', 'chart-hits', 'chart-p99'].every((id) => (globalThis as any).document.querySelector(`[data-testid="${id}"]`).dataset.rangeSeconds === want),
        String(seconds),
        { timeout: 20_000 },
      );
      assert.equal(await chartRange(page, 'chart-throughput'), seconds, choice);
    }
    const bad = await fetch(`${server.url}/v1/stats?window=2d`, { headers: { Authorization: `Bearer ${server.token}` } });
    assert.equal(bad.status, 400);
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

  it('shows the A–E counts, their chart and the D examples after an audit run from the page', async () => {
    const { page } = browser;
    assert.equal(await text(page, 'audit-C'), '–');
    assert.equal(await page.getByTestId('audit-examples').isVisible(), false);
    // k0's cached copy jumps 5 versions ahead of the store's, behind the engine's back: a D.
    const drift = await server.injectDrift(NS, 'k0');
    await page.getByTestId('audit-run').click();
    await waitForText(page, 'audit-time', (t) => t.startsWith('At '));
    const { json: stats } = await server.send('GET', '/v1/stats');
    const counts = stats.audit.counts as Record<string, number>;
    // 39 keys written through (C) and the drifted one (D); 20 committed whose cache step failed:
    // their write lease serves nothing (B); the other namespace's 5 (C).
    assert.equal(counts.C, 39 + 5);
    assert.equal(counts.B, 20);
    assert.equal(counts.D, 1);
    assert.equal(counts.E, 0);
    for (const state of ['A', 'B', 'C', 'D', 'E']) assert.equal(await text(page, `audit-${state}`), String(counts[state]), state);
    assert.match(await text(page, 'audit-time'), /keys in 2 namespaces/);
    // The example names the key, its namespace and both versions.
    const example = page.getByTestId('audit-example');
    await example.first().waitFor({ state: 'visible' });
    assert.equal(await example.count(), 1);
    const cells = await example.first().locator('td').allInnerTexts();
    assert.deepEqual(cells, ['D', NS, 'k0', `v${drift.store}`, `value v${drift.cache}`]);
    // The A–E chart has the run.
    await page.waitForFunction(() => Number((globalThis as any).document.querySelector('[data-testid="chart-audit"]').dataset.points) >= 1, undefined, { timeout: 20_000 });
    // The page's POST is same-origin JSON (the service refuses cross-site or non-JSON bodies).
    const post = requests.find((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/v1/audit');
    assert.ok(post, 'the page posted /v1/audit');
    const sent = await post.allHeaders();
    assert.match(sent['content-type'] ?? '', /^application\/json/);
    assert.equal(sent['origin'], server.url);
    assert.equal(post.postData(), '{}');
    assert.ok(requests.every((r) => r.url().startsWith(`${server.url}/`)), 'every request goes to the service');
    // The filter narrows the audit too: the other namespace has no D and no examples.
    const filter = page.getByTestId('namespace-filter');
    await filter.fill(OTHER);
    await filter.press('Enter');
    await waitForText(page, 'audit-C', (t) => t === '5');
    assert.equal(await text(page, 'audit-D'), '0');
    assert.equal(await page.getByTestId('audit-examples').isVisible(), false);
    await filter.fill('');
    await filter.press('Enter');
    await waitForText(page, 'audit-D', (t) => t === '1');
    await page.screenshot({ path: `${OUT_DIR}/dashboard.png`, fullPage: true });
  });

  it('fills 1400×1000 and 1280×800, and fits 800 px wide without horizontal scroll or overlap', async () => {
    const { page } = browser;
    for (const [width, height] of [[1400, 1000], [1280, 800], [800, 900]] as const) {
      await page.setViewportSize({ width, height });
      // The charts follow their boxes (a ResizeObserver): wait until each canvas spans its box.
      await page.waitForFunction(
        () => [...(globalThis as any).document.querySelectorAll('.chart')].every((el: any) => Math.abs(el.querySelector('canvas').getBoundingClientRect().width - el.clientWidth) <= 2),
        undefined,
        { timeout: 20_000 },
      );
      const layout = await page.evaluate(() => {
        const doc = (globalThis as any).document;
        const boxes = [...doc.querySelectorAll('.tile, main > .charts > .panel, main > .row > .panel')].map((el: any) => el.getBoundingClientRect());
        let overlaps = 0;
        for (let i = 0; i < boxes.length; i++) {
          for (let j = i + 1; j < boxes.length; j++) {
            const a = boxes[i];
            const b = boxes[j];
            if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) overlaps++;
          }
        }
        const main = doc.querySelector('main').getBoundingClientRect();
        return { scrollWidth: doc.documentElement.scrollWidth, clientWidth: doc.documentElement.clientWidth, overlaps, bottom: main.bottom + (globalThis as any).scrollY, panels: boxes.length };
      });
      assert.equal(layout.panels, 8 + 4 + 2);
      assert.equal(layout.overlaps, 0, `${width}×${height}: panels overlap`);
      assert.ok(layout.scrollWidth <= layout.clientWidth, `${width}×${height}: ${layout.scrollWidth} px of content in ${layout.clientWidth}`);
      // No empty bottom third: the panels reach at least 90 % of the viewport's height.
      assert.ok(layout.bottom >= 0.9 * height, `${width}×${height}: the panels end at ${Math.round(layout.bottom)} px`);
      await page.screenshot({ path: `${OUT_DIR}/dashboard-${width}x${height}.png`, fullPage: true });
    }
  });

  it('ran without a script error or a CSP violation', () => {
    // The 401 of the first stats call is logged by Chromium as a failed resource load: expected.
    const unexpected = browser.errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
