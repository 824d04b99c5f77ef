// The cache down under the proxy: reads fail open to PostgreSQL, writes still commit and are
// acknowledged, and when the cache answers again the journal makes the value it held fresh again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const down = { kind: 'throw', when: 'before' } as const;

describe('pg-proxy with the cache down', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const cache = new ChaosCache(createMemoryCache({ maxEntries: 100 }));
  let c: pg.Client;
  before(async () => {
    db = await createProxyDatabase('down', 3);
    proxy = await startTestProxy(db, { cache, drainListen: false, drainPollMs: 100 });
    c = new pg.Client({ connectionString: proxy.url });
    await c.connect();
  });
  after(async () => {
    await c?.end();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('reads pass through, writes commit; once the cache is back the journal replay fences the old value', async () => {
    await c.query('SELECT val FROM items WHERE id = 1');
    await c.query('SELECT val FROM items WHERE id = 1'); // cached: 'v1'
    for (const op of ['get', 'fill', 'invalidateOlder'] as const) cache.faults.always(op, down);
    const passed = proxy.metrics.passThrough['cache-error'];
    assert.equal((await c.query('SELECT val FROM items WHERE id = 1')).rows[0].val, 'v1');
    assert.equal(proxy.metrics.passThrough['cache-error'], passed + 1, 'failed open');
    assert.deepEqual((await c.query("UPDATE items SET val = 'while-down' WHERE id = 1 RETURNING val")).rows, [{ val: 'while-down' }]);
    assert.ok(proxy.metrics.fenceFailures >= 1);
    assert.equal((await c.query('SELECT val FROM items WHERE id = 1')).rows[0].val, 'while-down', 'read from PostgreSQL while down');
    cache.faults.clear();
    // The cache still holds 'v1' under the old version; the drainer (not the fence) must replay the write.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const val = (await c.query('SELECT val FROM items WHERE id = 1')).rows[0].val;
      if (val === 'while-down') break;
      assert.ok(Date.now() < deadline, 'the journal replay fenced the stale value');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
