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
