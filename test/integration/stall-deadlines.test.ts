// Issue 11, point 1: a backend that accepts connections and then stops answering (a TCP relay that
// stops forwarding) must not hang a request. PostgreSQL, MariaDB and Redis each behind a relay:
// an uncached GET, a PUT, and a GET of a cached key while a stuck PUT holds its write lease each
// answer within the documented bound (leaseTtl + 2 × the cache's command timeout), asserted with
// 3× slack: a stalled store gives 503 with a code naming it, never the cached value; a stalled
// cache is failed open (the store answers). STALL_TRIES=5 repeats each case and prints p50/max
// (the figures in docs/operations.md, "Deadlines").
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createApp } from '../../src/http/app.js';
import { createService, type LockstepService } from '../../src/service/service.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { call, type Reply } from '../helpers/http-fixture.js';
import { DATABASE_URL, MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';

const LEASE_MS = 2_000;
const CACHE_TIMEOUT_MS = 500;
/** The documented bound: leaseTtl + 2 × the cache's command timeout (the memory cache has none). */
const BOUND_MS = LEASE_MS + 2 * CACHE_TIMEOUT_MS;
const SLACK = 3;
const TRIES = Math.max(1, Number(process.env.STALL_TRIES ?? 1));
const id = randomUUID().slice(0, 8);

interface Rig {
  readonly relay: StallRelay;
  readonly service: LockstepService;
  readonly app: ReturnType<typeof createApp>;
  readonly cache: CacheAdapter;
  close(): Promise<void>;
}

type Backend = 'postgres' | 'mariadb' | 'redis';

async function rig(backend: Backend): Promise<Rig> {
  const target = backend === 'postgres' ? DATABASE_URL : backend === 'mariadb' ? MYSQL_URL : REDIS_URL;
  const relay = await startStallRelay(target);
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-stall-'));
  const tag = `stall_${id}_${backend}`;
  const store: StoreAdapter =
    backend === 'postgres'
      ? createPostgresStore({ connectionString: relay.urlFor(DATABASE_URL), schema: tag, statementTimeout: '1s', notify: false })
      : backend === 'mariadb'
        ? createMysqlStore({ uri: relay.urlFor(MYSQL_URL), tablePrefix: `${tag}_`, statementTimeout: '1s' })
        : createSqliteStore({ path: join(dir, 'store.db') });
  const cache: CacheAdapter =
    backend === 'redis'
      ? createRedisCache({ url: relay.urlFor(REDIS_URL), keyPrefix: `${tag}:`, commandTimeout: `${CACHE_TIMEOUT_MS}ms` })
      : createMemoryCache({ maxEntries: 1_000 });
  // The schema is created before any request, as `lockstep serve` does: DDL may take longer than a lease.
  await (store as { ready?: () => Promise<void> }).ready?.();
  const service = createService({ store, cache, engine: { leaseTtl: `${LEASE_MS}ms` }, journal: { pollInterval: '50ms' }, audit: { interval: 0 } });
  const app = createApp(service);
  return {
    relay,
    service,
    app,
    cache,
    async close() {
      relay.resume();
      await service.close();
      await cache.close();
      if (backend === 'postgres') {
        const pg = (store as ReturnType<typeof createPostgresStore>).pool;
        await pg.connect().then(async (c) => {
          await c.query({ text: `DROP SCHEMA IF EXISTS ${tag} CASCADE` });
          c.release();
        });
      }
      await store.close();
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function timed(work: Promise<Reply>): Promise<{ reply: Reply; ms: number }> {
  const started = performance.now();
  const reply = await work;
  return { reply, ms: performance.now() - started };
}

async function until(condition: () => Promise<boolean>, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const figures: string[] = [];
function record(label: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)]!;
  figures.push(`${label}: p50 ${Math.round(p50)} ms, max ${Math.round(sorted.at(-1)!)} ms (${samples.length} tries, bound ${BOUND_MS} ms)`);
}

function assertStoreOutage(reply: Reply, ms: number, codes: readonly string[], what: string): void {
  assert.equal(reply.status, 503, `${what}: ${reply.text}`);
  assert.ok(codes.includes(reply.json?.error?.code), `${what}: code ${reply.json?.error?.code} is one of ${codes.join(', ')}`);
  assert.ok(ms < BOUND_MS * SLACK, `${what} answered after ${Math.round(ms)} ms (bound ${BOUND_MS} ms × ${SLACK})`);
}

for (const backend of ['postgres', 'mariadb'] as const) {
  const url = backend === 'postgres' ? DATABASE_URL : MYSQL_URL;
  describe(`a stalled ${backend} store answers 503 within the bound`, async () => {
    const service = await needService(backend, url);
    let r: Rig;
    before(async () => {
      if (service.skip === false) r = await rig(backend);
    });
    after(async () => {
      await r?.close();
    });

    it('uncached GET, PUT, and GET of a cached key under a stuck PUT\'s lease: 503 with a store code, never the cached value', { ...service, timeout: 120_000 }, async () => {
      const samples = { get: [] as number[], put: [] as number[], leased: [] as number[] };
      for (let i = 0; i < TRIES; i++) {
        const key = `k${i}`;
        // Healthy: the schema exists, the key is cached (a second GET is a hit).
        assert.equal((await call(r.app, 'PUT', `/v1/kv/ns/${key}`, { json: 'v1' })).status, 200);
        assert.equal((await call(r.app, 'GET', `/v1/kv/ns/${key}`)).status, 200);
        assert.equal((await call(r.app, 'GET', `/v1/kv/ns/${key}`)).headers.get('X-Cache'), 'hit');
        r.relay.stall();

        const get = await timed(call(r.app, 'GET', `/v1/kv/ns/uncached-${key}`));
        assertStoreOutage(get.reply, get.ms, ['E_STORE_TIMEOUT', 'E_STORE_READ'], 'uncached GET');
        samples.get.push(get.ms);

        const put = await timed(call(r.app, 'PUT', `/v1/kv/ns/other-${key}`, { json: 'x' }));
        assertStoreOutage(put.reply, put.ms, ['E_STORE_OUTCOME_UNKNOWN', 'E_STORE_WRITE'], 'PUT');
        samples.put.push(put.ms);

        // A PUT of the cached key gets stuck holding its write lease; a reader must not be served v1.
        const stuck = call(r.app, 'PUT', `/v1/kv/ns/${key}`, { json: 'v2' });
        await until(async () => (await r.cache.peek(`ns:${key}`))?.kind === 'write', 'the stuck PUT\'s lease');
        const leased = await timed(call(r.app, 'GET', `/v1/kv/ns/${key}`));
        assertStoreOutage(leased.reply, leased.ms, ['E_STORE_TIMEOUT', 'E_STORE_READ'], 'GET of a cached key under a write lease');
        samples.leased.push(leased.ms);
        const stuckReply = await stuck;
        assert.equal(stuckReply.status, 503, stuckReply.text);
        assert.equal(stuckReply.json.error.code, 'E_STORE_OUTCOME_UNKNOWN');

        r.relay.resume();
        // Once the lease expired the key reads again, from the store: v1 or v2, whichever committed.
        await until(async () => (await call(r.app, 'GET', `/v1/kv/ns/${key}`)).status === 200, 'the key to read again', 20_000);
      }
      record(`${backend} stalled: uncached GET`, samples.get);
      record(`${backend} stalled: PUT`, samples.put);
      record(`${backend} stalled: GET of a cached key under a stuck PUT's lease`, samples.leased);
    });
  });
}

describe('a stalled Redis cache is failed open within the bound', async () => {
  const service = await needService('redis', REDIS_URL);
  let r: Rig;
  before(async () => {
    if (service.skip === false) r = await rig('redis');
  });
  after(async () => {
    await r?.close();
  });

  it('uncached GET, PUT, and GET of a cached key answer from the store (never a stale value)', { ...service, timeout: 120_000 }, async () => {
    const samples = { get: [] as number[], put: [] as number[], cached: [] as number[] };
    for (let i = 0; i < TRIES; i++) {
      const key = `k${i}`;
      assert.equal((await call(r.app, 'PUT', `/v1/kv/ns/${key}`, { json: 'v1' })).status, 200);
      assert.equal((await call(r.app, 'GET', `/v1/kv/ns/${key}`)).status, 200);
      r.relay.stall();

      const get = await timed(call(r.app, 'GET', `/v1/kv/ns/uncached-${key}`));
      assert.equal(get.reply.status, 404, get.reply.text); // the store answered: not found
      assert.ok(get.ms < BOUND_MS * SLACK, `uncached GET took ${Math.round(get.ms)} ms`);
      samples.get.push(get.ms);

      // pragmatic: committed with a repair row, acknowledged although the cache did not answer.
      const put = await timed(call(r.app, 'PUT', `/v1/kv/ns/${key}`, { json: 'v2' }));
      assert.equal(put.reply.status, 200, put.reply.text);
      assert.ok(put.ms < BOUND_MS * SLACK, `PUT took ${Math.round(put.ms)} ms`);
      samples.put.push(put.ms);

      const cached = await timed(call(r.app, 'GET', `/v1/kv/ns/${key}`));
      assert.equal(cached.reply.status, 200, cached.reply.text);
      assert.equal(cached.reply.json.value, 'v2', 'the acknowledged value, not the cached v1');
      assert.ok(cached.ms < BOUND_MS * SLACK, `GET took ${Math.round(cached.ms)} ms`);
      samples.cached.push(cached.ms);
      r.relay.resume();
    }
    record('redis stalled: uncached GET (store answers)', samples.get);
    record('redis stalled: PUT (pragmatic, journaled)', samples.put);
    record('redis stalled: GET of a cached key (store answers)', samples.cached);
  });

  after(() => {
    for (const line of figures) console.log(`# ${line}`);
  });
});
