// Issue 11, points 6 and 9: a key no backend can store is bad input (400), decided before any
// backend is touched, on PostgreSQL and MariaDB alike, and never counted as a store failure; and
// GET …/state gives cache.expiresAt in epoch ms with the memory cache and with Redis.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createApp } from '../../src/http/app.js';
import { createService } from '../../src/service/service.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { call } from '../helpers/http-fixture.js';
import { DATABASE_URL, MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';

const id = randomUUID().slice(0, 8);
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function appOver(store: StoreAdapter, cache: CacheAdapter) {
  const service = createService({ store, cache, audit: { interval: 0 } });
  cleanups.push(async () => {
    await service.close();
    await cache.close();
    await store.close();
  });
  return createApp(service);
}

const dbFailures = (metrics: string): number =>
  metrics
    .split('\n')
    .filter((line) => line.startsWith('write_through_db_failures'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);

for (const backend of ['postgres', 'mariadb'] as const) {
  describe(`the key rule over ${backend}`, async () => {
    const service = await needService(backend, backend === 'postgres' ? DATABASE_URL : MYSQL_URL);
    it('a key with U+0000, a lone surrogate or over 512 bytes is a 400 on every route, not a store failure', service, async () => {
      const store =
        backend === 'postgres'
          ? createPostgresStore({ connectionString: DATABASE_URL, schema: `keyrule_${id}`, notify: false })
          : createMysqlStore({ uri: MYSQL_URL, tablePrefix: `keyrule_${id}_` });
      const app = await appOver(store, createMemoryCache({ maxEntries: 100 }));
      // Runs before appOver's cleanup closes the store (cleanups run in reverse).
      if (backend === 'postgres') {
        cleanups.push(async () => {
          const pg = (store as ReturnType<typeof createPostgresStore>).pool;
          const c = await pg.connect();
          await c.query({ text: `DROP SCHEMA IF EXISTS keyrule_${id} CASCADE` });
          c.release();
        });
      }
      assert.equal((await call(app, 'PUT', '/v1/kv/ns/ok', { json: 1 })).status, 200);
      for (const raw of ['a%00b', '%00', 'a%ED%A0%80' /* not UTF-8: a surrogate */, 'x'.repeat(513)]) {
        for (const [method, path, json] of [
          ['PUT', `/v1/kv/ns/${raw}`, 'v'],
          ['GET', `/v1/kv/ns/${raw}`, undefined],
          ['DELETE', `/v1/kv/ns/${raw}`, undefined],
          ['GET', `/v1/kv/ns/${raw}/state`, undefined],
        ] as const) {
          const reply = await call(app, method, path, json === undefined ? {} : { json });
          assert.equal(reply.status, 400, `${method} ${path.slice(0, 40)}: ${reply.text}`);
          assert.match(reply.json.error.code, /^E_(INVALID_KEY|KEY_TOO_LONG)$/);
        }
      }
      // A batch reports the item, not the batch.
      const batch = await call(app, 'POST', '/v1/kv/ns:batchPut', { json: { items: [{ key: 'a\u0000b', value: 1 }, { key: 'fine', value: 2 }] } });
      assert.equal(batch.status, 200, batch.text);
      assert.equal(batch.json.items[0].error.code, 'E_INVALID_KEY');
      assert.equal(batch.json.items[1].version >= 1, true);
      assert.equal(dbFailures((await call(app, 'GET', '/metrics')).text), 0, 'no store failure counted');
    });
  });
}

describe('GET …/state: cache.expiresAt is epoch ms with every cache', async () => {
  const redis = await needService('redis', REDIS_URL);
  for (const kind of ['memory', 'redis'] as const) {
    it(`${kind}: a cached value's expiresAt is about Date.now() + ttl`, kind === 'redis' ? redis : {}, async () => {
      const { createSqliteStore } = await import('../../src/store/sqlite.js');
      const cache = kind === 'memory' ? createMemoryCache({ maxEntries: 100 }) : createRedisCache({ url: REDIS_URL, keyPrefix: `keyrule:${id}:` });
      const app = await appOver(createSqliteStore({ path: ':memory:' }), cache);
      // A write whose cache step failed (a Redis call past its deadline on a loaded machine) is
      // acknowledged with its lease left to expire, and the state shows that lease: write again.
      let state: Awaited<ReturnType<typeof call>>;
      for (const deadline = Date.now() + 30_000; ; ) {
        assert.equal((await call(app, 'PUT', '/v1/kv/ns/k', { json: 1, headers: { 'X-TTL-Ms': '60000' } })).status, 200);
        state = await call(app, 'GET', '/v1/kv/ns/k/state');
        assert.equal(state.status, 200, state.text);
        if (state.json.cache?.kind === 'value') break;
        assert.ok(Date.now() < deadline, `the cache never held the value: ${state.text}`);
      }
      const expiresAt = state.json.cache.expiresAt as number;
      assert.ok(Math.abs(expiresAt - (Date.now() + 60_000)) < 5_000, `expiresAt ${expiresAt} vs now ${Date.now()} + 60 s`);
    });
  }
});
