// The dashboard's test bench: the real server on 127.0.0.1 (port 0) over a real SQLite file and a
// memory cache behind a ChaosCache (cache failures on demand), a client that sends traffic over
// HTTP, and a headless Debian Chromium with a fresh profile driven by playwright-core.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { createApp } from '../../src/http/app.js';
import { cacheKeyOf } from '../../src/keys.js';
import { listen } from '../../src/http/server.js';
import { createService, type EngineSettings, type LockstepService, type ServiceAuditOptions } from '../../src/service/service.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { CHROMIUM_PATH } from './services.js';

export interface DashboardServer {
  readonly url: string;
  readonly token: string;
  readonly service: LockstepService;
  readonly cache: ChaosCache;
  readonly sqlite: SqliteStore;
  /** A request with the token; JSON bodies are encoded; throws on a status other than 200 or 404. */
  send(method: 'GET' | 'PUT' | 'DELETE' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /**
   * Makes a written key D (inconsistent) behind the engine's back: its cached copy is replaced by
   * one 5 versions ahead of the store's, as a buggy writer would leave it. Returns both versions.
   */
  injectDrift(namespace: string, key: string): Promise<{ store: number; cache: number }>;
  close(): Promise<void>;
}

export async function startDashboardServer(
  options: { engine?: EngineSettings; audit?: ServiceAuditOptions; statsInterval?: string; metricsNamespaces?: number } = {},
): Promise<DashboardServer> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-dashboard-'));
  const sqlite = createSqliteStore({ path: join(dir, 'store.db') });
  const memory = createMemoryCache({ maxEntries: 10_000 });
  const cache = new ChaosCache(memory);
  const service = createService({ store: sqlite, cache, engine: options.engine, journal: { pollInterval: '50ms' }, audit: options.audit ?? { interval: 0 }, statsInterval: options.statsInterval ?? '1s', ...(options.metricsNamespaces === undefined ? {} : { metricsNamespaces: options.metricsNamespaces }) });
  const token = `dash-${process.pid}-${Date.now()}`;
  const server = await listen(createApp(service, { token }), { host: '127.0.0.1', port: 0, token });
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  return {
    url: server.url,
    token,
    service,
    cache,
    sqlite,
    async send(method, path, body) {
      const response = await fetch(server.url + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const text = await response.text();
      if (response.status !== 200 && response.status !== 404) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
      return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
    },
    async injectDrift(namespace, key) {
      const cacheKey = cacheKeyOf(namespace, key);
      const cached = await cache.peek(cacheKey);
      if (cached?.kind !== 'value') throw new Error(`${namespace}/${key} has no cached value to drift (${cached?.kind})`);
      const drifted = cached.version + 5;
      await cache.invalidateOlder(cacheKey, drifted);
      const miss = await cache.get(cacheKey, 60_000);
      if (miss.kind !== 'miss' || miss.token === undefined) throw new Error(`no fill lease for ${cacheKey}: ${miss.kind}`);
      const entry = { version: drifted, payload: cached.payload, tombstone: false, sizeBytes: 16 };
      if (!(await cache.fill(cacheKey, miss.token, entry, 3_600_000))) throw new Error(`fill of ${cacheKey} refused`);
      return { store: cached.version, cache: drifted };
    },
    async close() {
      await server.close();
      await service.close();
      await memory.close();
      await sqlite.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  readonly page: Page;
  /** Console errors and failed page loads, for "the page ran clean" assertions. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile; nothing reaches the network but the test server. */
export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'lockstep-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      viewport,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return {
    page,
    errors,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** The text of the element with this data-testid. */
export function text(page: Page, testId: string): Promise<string> {
  return page.getByTestId(testId).innerText();
}

/** Waits until the element's text satisfies `ok` (the page polls once a second). */
export async function waitForText(page: Page, testId: string, ok: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await text(page, testId);
    if (ok(current)) return current;
    if (Date.now() > deadline) throw new Error(`[data-testid=${testId}] still reads ${JSON.stringify(current)} after ${timeoutMs} ms`);
    await page.waitForTimeout(100);
  }
}
