// Cross-site writes from a real browser (headless Chromium): a page served from another local
// origin (http://127.0.0.2:P2) tries the writes a hostile page would — fetch() with a text/plain
// body (no preflight), fetch() with application/json (preflight), and an auto-submitted text/plain
// form — against a no-token service on 127.0.0.1. The service must see them and write nothing.
// Teeth: each body the browser delivered is a valid write, as a replay from the service's own
// origin shows; only the cross-site rules stopped it.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { launchBrowser, type Browser } from '../helpers/dashboard-fixture.js';
import { httpFixture, type HttpFixture } from '../helpers/http-fixture.js';
import { CHROMIUM_PATH, needProgram } from '../helpers/services.js';

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly origin: string | null;
  readonly contentType: string | null;
  readonly body: string;
  status?: number;
}

function evilPage(target: string): Record<string, string> {
  const batch = `${target}/v1/kv/victim:batchPut`;
  const fetchBody = JSON.stringify({ items: [{ key: 'by-fetch', value: 'pwned' }] });
  return {
    '/fetch.html': `<!doctype html><title>evil</title><script>
      fetch(${JSON.stringify(batch)}, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: ${JSON.stringify(fetchBody)} })
        .then(() => { document.title = 'no-cors sent'; }, () => { document.title = 'no-cors failed'; });
      fetch(${JSON.stringify(batch)}, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: ${JSON.stringify(fetchBody.replace('by-fetch', 'by-cors'))} })
        .then(() => { document.body.dataset.cors = 'answered'; }, () => { document.body.dataset.cors = 'blocked'; });
    </script>`,
    // A text/plain form sends name=value: the name opens the JSON, the value closes it.
    '/form.html': `<!doctype html><title>evil form</title>
      <form id="f" method="POST" enctype="text/plain" action="${batch}">
        <input name='{"items":[{"key":"by-form","value":"pwned' value='"}]}'>
      </form>
      <script>document.getElementById('f').submit();</script>`,
  };
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('cross-site writes from Chromium', needProgram('Chromium', CHROMIUM_PATH), () => {
  let f: HttpFixture;
  let service: RunningServer;
  let evil: Server;
  let evilUrl: string;
  let browser: Browser;
  const seen: Seen[] = [];

  before(async () => {
    f = await httpFixture();
    const app = createApp(f.service, { onUnexpectedError: (error) => f.unexpected.push(error) });
    // Records what reached the service, and how it was answered.
    const recording = {
      async fetch(request: Request): Promise<Response> {
        const entry: Seen = {
          method: request.method,
          path: new URL(request.url).pathname,
          origin: request.headers.get('origin'),
          contentType: request.headers.get('content-type'),
          body: request.body === null ? '' : await request.clone().text(),
        };
        seen.push(entry);
        const response = await app.fetch(request);
        entry.status = response.status;
        return response;
      },
    };
    service = await listen(recording, { host: '127.0.0.1', port: 0 });
    const pages = evilPage(service.url);
    evil = createServer((req, res) => {
      const page = pages[req.url ?? ''];
      res.writeHead(page === undefined ? 404 : 200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page ?? 'not found');
    });
    await new Promise<void>((resolve, reject) => {
      evil.once('error', reject);
      evil.listen(0, '127.0.0.2', resolve);
    });
    evilUrl = `http://127.0.0.2:${(evil.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (evil !== undefined) await new Promise((resolve) => evil.close(resolve));
    await service?.close();
    await f?.close();
  });

  it('fetch() with text/plain and with JSON from another origin: refused, nothing written', async () => {
    const { page } = browser;
    await page.goto(`${evilUrl}/fetch.html`);
    const noCors = await waitFor('the no-cors POST', () => seen.find((s) => s.method === 'POST' && s.body.includes('by-fetch') && s.status !== undefined));
    assert.equal(noCors.origin, evilUrl, 'the browser sent it from the other origin');
    assert.match(noCors.contentType ?? '', /^text\/plain/);
    assert.equal(noCors.status, 403);
    // The JSON request needs a preflight: refused, so the POST itself never leaves the browser.
    await page.waitForFunction(() => (globalThis as unknown as { document: { body: { dataset: { cors?: string } } } }).document.body.dataset.cors !== undefined, undefined, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { body: { dataset: { cors?: string } } } }).document.body.dataset.cors), 'blocked');
    const preflight = await waitFor('the preflight', () => seen.find((s) => s.method === 'OPTIONS' && s.status !== undefined));
    assert.equal(preflight.status, 403);
    assert.equal(seen.some((s) => s.body.includes('by-cors')), false, 'the JSON POST was not sent');
    assert.equal(await f.sqlite.read('victim', 'by-fetch'), undefined);
    assert.equal(await f.sqlite.read('victim', 'by-cors'), undefined);
  });

  it('an auto-submitted text/plain form from another origin: refused, nothing written', async () => {
    const { page } = browser;
    await page.goto(`${evilUrl}/form.html`);
    const form = await waitFor('the form POST', () => seen.find((s) => s.method === 'POST' && s.body.includes('by-form') && s.status !== undefined));
    assert.equal(form.origin, evilUrl);
    assert.equal(form.status, 403);
    assert.equal(await f.sqlite.read('victim', 'by-form'), undefined);
  });

  it('teeth: the bodies the browser delivered are valid writes from the own origin', async () => {
    for (const key of ['by-fetch', 'by-form']) {
      const delivered = seen.find((s) => s.method === 'POST' && s.body.includes(key));
      assert.ok(delivered, key);
      const replay = await fetch(`${service.url}/v1/kv/victim:batchPut`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: delivered.body });
      assert.equal(replay.status, 200, `${key}: ${await replay.text()}`);
      assert.match((await f.sqlite.read('victim', key))?.payload ?? '', /^"pwned=?"$/, key); // a form appends its '='
    }
    assert.deepEqual(f.unexpected, []);
  });
});
