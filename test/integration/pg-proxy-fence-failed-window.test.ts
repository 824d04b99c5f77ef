// A commit whose fence could not reach the cache is still acknowledged (pragmatic): the row is
// journaled, and the drainer's next pass invalidates it. The cache back before that pass, a read right
// after the acknowledgement was served the row the write had replaced, for up to the drainer's poll
// (and for as long as the bypass bound, when no pass completed). The proxy now serves no hit from the
// failed fence until a pass of the drainer that began after it completed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
import { needRedisServer, startRedisServer, untilUptime, type RedisServer } from '../helpers/redis-server.js';
import { createRedisCache } from '../../src/cache/redis.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a read after a commit whose fence failed', { skip: service.skip, timeout: 90_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const cache = new ChaosCache(createMemoryCache({ maxEntries: 100 }));
  let writer: pg.Client;
  let reader: pg.Client;
  before(async () => {
    db = await createProxyDatabase('fencefail', 3);
    // A slow drainer (one pass at start, then every 10 s; no wake-ups): the window is the test's to see.
    proxy = await startTestProxy(db, { cache, drainListen: false, drainPollMs: 10_000, bypassBoundMs: 30_000 });
    writer = new pg.Client({ connectionString: proxy.url });
    reader = new pg.Client({ connectionString: proxy.url });
    await writer.connect();
    await reader.connect();
  });
  after(async () => {
    await writer?.end();
    await reader?.end();
    await proxy?.close(1000);
    await db?.drop();
  });

  async function untilHit(sql: string): Promise<void> {
    await until('a hit', async () => {
      const hits = proxy.metrics.hits;
      await reader.query(sql);
      return proxy.metrics.hits === hits + 1;
    }, 20_000);
  }

  it('is never served the replaced row once the cache answers again', async () => {
    const sql = 'SELECT val FROM items WHERE id = 1';
    await untilHit(sql);
    cache.faults.always('invalidateOlder', { kind: 'throw', when: 'before' });
    const failures = proxy.metrics.fenceFailures;
    await writer.query("UPDATE items SET val = 'after-outage' WHERE id = 1");
    assert.ok(proxy.metrics.fenceFailures > failures, 'the fence failed');
    cache.faults.clear(); // the cache answers again; the drainer's next pass is seconds away
    for (let i = 0; i < 5; i++) assert.equal((await reader.query(sql)).rows[0].val, 'after-outage');
    for (let i = 0; i < 5; i++) assert.equal((await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0].val, 'after-outage');
  });

  it('serves hits again after the next pass of the drainer', async () => {
    await untilHit('SELECT val FROM items WHERE id = 2');
    assert.equal((await reader.query('SELECT val FROM items WHERE id = 1')).rows[0].val, 'after-outage');
  });
});

// With a real Redis stopped, the fence's invalidation times out but was sent: Redis runs it when it
// continues (this passes without the gate above too); what the gate covers is an invalidation refused
// or lost, as the wrapper above makes it.
describe('pg-proxy: a read after a commit whose fence timed out on its own Redis, stopped (SIGSTOP)', { skip: service.skip || needRedisServer().skip, timeout: 90_000 }, () => {
  let db: ProxyDatabase;
  let redis: RedisServer;
  let redisCache: ReturnType<typeof createRedisCache> | undefined;
  let proxy: PgProxy & { url: string };
  let writer: pg.Client;
  let reader: pg.Client;
  before(async () => {
    db = await createProxyDatabase('fencestop', 3);
    redis = await startRedisServer();
    await untilUptime(redis); // past the first-use quarantine of a freshly started server
    redisCache = createRedisCache({ url: redis.url, commandTimeout: '300ms' });
    proxy = await startTestProxy(db, { cache: redisCache, drainListen: false, drainPollMs: 10_000, bypassBoundMs: 30_000 });
    writer = new pg.Client({ connectionString: proxy.url });
    reader = new pg.Client({ connectionString: proxy.url });
    await writer.connect();
    await reader.connect();
  });
  after(async () => {
    redis?.resume();
    await writer?.end();
    await reader?.end();
    await proxy?.close(1000);
    await redisCache?.close();
    await redis?.stop();
    await db?.drop();
  });

  it('the write commits and is acknowledged while Redis is stopped, and no read after it returns the replaced row', async () => {
    const sql = 'SELECT val FROM items WHERE id = 1';
    await until('a hit', async () => {
      const hits = proxy.metrics.hits;
      await reader.query(sql);
      return proxy.metrics.hits === hits + 1;
    }, 20_000);
    redis.pause();
    const failures = proxy.metrics.fenceFailures;
    try {
      await writer.query("UPDATE items SET val = 'while-stopped' WHERE id = 1");
      assert.ok(proxy.metrics.fenceFailures > failures, 'the fence timed out');
    } finally {
      redis.resume();
    }
    await until('Redis answers again', async () => (await redis.cli('PING')).trim() === 'PONG', 10_000);
    for (let i = 0; i < 5; i++) assert.equal((await reader.query(sql)).rows[0].val, 'while-stopped');
  });

});
