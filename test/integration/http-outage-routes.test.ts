// Issue 11, point 5: error mapping is total. Every route of the OpenAPI document, with PostgreSQL
// and then Redis down (connection refused) and stalled (a relay that stops forwarding): no answer
// is a 500 (nor a batch item E_INTERNAL), a failure is a 503 with a code, every answer comes within
// the request bound (with slack), and nothing reaches the app's unexpected-error hook.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { createApp } from '../../src/http/app.js';
import { openApiDocument } from '../../src/http/openapi.js';
import { createService, type LockstepService } from '../../src/service/service.js';
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres.js';
import { call } from '../helpers/http-fixture.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';

const LEASE_MS = 1_000;
const CACHE_TIMEOUT_MS = 300;
const BOUND_MS = LEASE_MS + 2 * CACHE_TIMEOUT_MS;
const SLACK = 3;
const id = randomUUID().slice(0, 8);
const schema = `outage_${id}`;

/** Every operation of the OpenAPI document, as a request: path parameters filled, a valid body. */
function routes(): Array<{ method: string; path: string; json?: unknown }> {
  const out: Array<{ method: string; path: string; json?: unknown }> = [];
  for (const [template, operations] of Object.entries(openApiDocument.paths as Record<string, Record<string, unknown>>)) {
    const path = template.replace('{namespace}', 'ns').replace('{key}', 'k');
    for (const method of Object.keys(operations)) {
      if (!['get', 'put', 'post', 'delete'].includes(method)) continue;
      const json = path.endsWith(':batchGet')
        ? { keys: ['k', 'k2'] }
        : path.endsWith(':batchPut')
          ? { items: [{ key: 'k', value: 1 }, { key: 'k2', value: 2 }] }
          : method === 'put'
            ? 'v'
            : undefined;
      out.push({ method: method.toUpperCase(), path, ...(json === undefined ? {} : { json }) });
    }
  }
  return out;
}

describe('every route with each backend down or stalled: never a 500', async () => {
  const pgService = await needService('postgres', DATABASE_URL);
  const redisService = await needService('redis', REDIS_URL);
  const skip = pgService.skip || redisService.skip;
  let storeRelay: StallRelay;
  let cacheRelay: StallRelay;
  let store: PostgresStore;
  let cache: RedisCacheAdapter;
  let service: LockstepService;
  let app: ReturnType<typeof createApp>;
  const unexpected: unknown[] = [];

  before(async () => {
    if (skip) return;
    storeRelay = await startStallRelay(DATABASE_URL);
    cacheRelay = await startStallRelay(REDIS_URL);
    store = createPostgresStore({ connectionString: storeRelay.urlFor(DATABASE_URL), schema, statementTimeout: '500ms', notify: false });
    cache = createRedisCache({ url: cacheRelay.urlFor(REDIS_URL), keyPrefix: `${schema}:`, commandTimeout: `${CACHE_TIMEOUT_MS}ms` });
    service = createService({ store, cache, engine: { leaseTtl: `${LEASE_MS}ms` }, journal: { pollInterval: '50ms' }, audit: { interval: 0 }, healthTimeoutMs: 300 });
    app = createApp(service, { onUnexpectedError: (error) => unexpected.push(error) });
    await store.ready(); // DDL may take longer than a lease on a loaded machine (serve does this at start-up)
    assert.equal((await call(app, 'PUT', '/v1/kv/ns/k', { json: 'v' })).status, 200);
    assert.equal((await call(app, 'GET', '/v1/kv/ns/k')).status, 200);
  });

  after(async () => {
    if (skip) return;
    storeRelay.resume();
    cacheRelay.resume();
    await storeRelay.up().catch(() => undefined);
    await cacheRelay.up().catch(() => undefined);
    await service.close();
    await cache.close();
    const client = await store.pool.connect();
    await client.query({ text: `DROP SCHEMA IF EXISTS ${schema} CASCADE` });
    client.release();
    await store.close();
    await storeRelay.close();
    await cacheRelay.close();
  });

  const faults: Array<[string, () => StallRelay, 'down' | 'stalled']> = [
    ['PostgreSQL down', () => storeRelay, 'down'],
    ['PostgreSQL stalled', () => storeRelay, 'stalled'],
    ['Redis down', () => cacheRelay, 'down'],
    ['Redis stalled', () => cacheRelay, 'stalled'],
  ];
  for (const [label, relayOf, mode] of faults) {
    it(`${label}: every route answers its normal answer or 503 with a code, within the bound`, { skip, timeout: 120_000 }, async () => {
      const relay = relayOf();
      if (mode === 'down') await relay.down();
      else relay.stall();
      try {
        const seen: string[] = [];
        for (const route of routes()) {
          const started = performance.now();
          const reply = await call(app, route.method, route.path, route.json === undefined ? {} : { json: route.json });
          const ms = performance.now() - started;
          const what = `${route.method} ${route.path} (${label})`;
          seen.push(`${what} → ${reply.status} ${reply.json?.error?.code ?? ''}`);
          assert.notEqual(reply.status, 500, `${what}: ${reply.text}`);
          // A 503 names the backend (never E_CLOSED or another catch-all); /readyz says `unavailable`.
          if (reply.status === 503) assert.match(String(reply.json?.error?.code ?? reply.json?.status), /^(E_STORE_[A-Z_]+|E_CACHE_[A-Z_]+|unavailable)$/, `${what}: ${reply.text}`);
          for (const item of (reply.json?.items ?? []) as Array<{ error?: { code?: string } }>) {
            assert.notEqual(item.error?.code, 'E_INTERNAL', `${what}: ${reply.text}`);
          }
          // POST /v1/audit reads every namespace's keys: it is bounded per call, not by one request bound.
          if (route.path !== '/v1/audit') assert.ok(ms < BOUND_MS * SLACK, `${what} answered after ${Math.round(ms)} ms`);
        }
        if (process.env.SHOW_ROUTES === "1") console.log(seen.join("\n"));
        assert.deepEqual(unexpected, [], seen.join("\n"));
      } finally {
        if (mode === 'down') await relay.up();
        else relay.resume();
      }
    });
  }
});
