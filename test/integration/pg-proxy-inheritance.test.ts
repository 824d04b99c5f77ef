// A cached table with inheritance children: `SELECT … FROM items WHERE id = $1` returns a child's
// rows too, and a write to a child fires none of the triggers installed on `items` (no journal row,
// no fence). A cached answer of such a table could therefore stay older than a write acknowledged
// through the proxy. The proxy caches no answer while the table has children (checked in the fill's
// snapshot), and a child created straight on PostgreSQL flushes the parent (event trigger).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a cached table with inheritance children', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  const sql = 'SELECT id, val FROM items WHERE id = $1';

  before(async () => {
    db = await createProxyDatabase('inherit', 20);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('a write to a child made through the proxy is read at once from another connection', async () => {
    const writer = await clients.open();
    const reader = await clients.open();
    await writer.query('CREATE TABLE items_child () INHERITS (items)');
    // Read the key a few times: a proxy that caches the answer "no row" serves it from now on.
    for (let i = 0; i < 3; i++) assert.deepEqual((await reader.query(sql, [100])).rows, []);
    await writer.query("INSERT INTO items_child (id, val) VALUES (100, 'child')");
    assert.deepEqual((await reader.query(sql, [100])).rows, [{ id: 100, val: 'child' }]);
    await reader.query(sql, [100]);
    await writer.query("UPDATE items_child SET val = 'child2' WHERE id = 100");
    assert.deepEqual((await reader.query(sql, [100])).rows, [{ id: 100, val: 'child2' }]);
    // The simple protocol too.
    await reader.query('SELECT id, val FROM items WHERE id = 100');
    await writer.query('DELETE FROM items_child WHERE id = 100');
    assert.deepEqual((await reader.query('SELECT id, val FROM items WHERE id = 100')).rows, []);
    await writer.query('DROP TABLE items_child');
  });

  it('a child created straight on PostgreSQL after the answer was cached flushes it (event trigger)', async () => {
    const reader = await clients.open();
    const writer = await clients.open();
    await clients.untilHit(reader, sql, 200); // "no row" cached while items has no child
    const flushes = proxy.metrics.flushes;
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    try {
      await direct.query('CREATE TABLE items_child2 () INHERITS (items)');
    } finally {
      await direct.end();
    }
    // The flush is journaled by the CREATE's transaction and applied by the drainer (the bypass bound).
    const deadline = Date.now() + 5_000;
    while (proxy.metrics.flushes === flushes && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(proxy.metrics.flushes > flushes, 'the CREATE TABLE … INHERITS (items) made straight on PostgreSQL flushed items');
    await writer.query("INSERT INTO items_child2 (id, val) VALUES (200, 'child')");
    assert.deepEqual((await reader.query(sql, [200])).rows, [{ id: 200, val: 'child' }]);
    await writer.query("UPDATE items_child2 SET val = 'child2' WHERE id = 200");
    assert.deepEqual((await reader.query(sql, [200])).rows, [{ id: 200, val: 'child2' }]);
  });
});
