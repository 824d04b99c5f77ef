// A table swap — load a copy, then `ALTER TABLE items RENAME TO items_old; ALTER TABLE items_new RENAME
// TO items`, a common way to reload a table — leaves the proxy's triggers on the old relation (the
// proxy describes its tables, by oid, at start). A bare `items` then resolves to another relation and
// passes through; but a schema-qualified read (`FROM public.items`) was checked by name only: its fill
// cached the new table's row, whose writes fire no trigger of the proxy's, and a read after an UPDATE
// acknowledged through the proxy returned the row the update had replaced. A qualified name is now
// checked like a bare one: it must resolve to the cached table's oid, in the session and in the fill.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a cached table swapped for another by renames', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);

  before(async () => {
    db = await createProxyDatabase('swapped', 5);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('a schema-qualified read after the swap (extended and simple protocol) sees an UPDATE acknowledged through the proxy', async () => {
    const reader = await clients.open();
    const writer = await clients.open();
    const extended = (id: number) => reader.query('SELECT id, val FROM public.items WHERE id = $1', [id]);
    const simple = (id: number) => reader.query(`SELECT id, val FROM public.items WHERE id = ${id}`);
    assert.deepEqual(await clients.untilHit(reader, 'SELECT id, val FROM public.items WHERE id = $1', 1), { id: 1, val: 'v1' });
    const flushes = proxy.metrics.flushes;
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(`CREATE TABLE items_new (LIKE items INCLUDING ALL); INSERT INTO items_new SELECT id, 'reloaded' || id, n, at, price FROM items;
      BEGIN; ALTER TABLE items RENAME TO items_old; ALTER TABLE items_new RENAME TO items; COMMIT`);
    await direct.end();
    await until('the rename to flush the cached items (the drainer, within the bypass bound)', async () => proxy.metrics.flushes > flushes, 5_000);
    for (const [id, read] of [[1, extended], [2, simple]] as const) {
      for (let i = 0; i < 3; i++) assert.deepEqual((await read(id)).rows, [{ id, val: `reloaded${id}` }]);
      await writer.query(`UPDATE public.items SET val = 'new' WHERE id = ${id}`);
      assert.deepEqual((await read(id)).rows, [{ id, val: 'new' }]);
    }
    // A bare name resolves to the new table too: it passes through, as before.
    assert.deepEqual((await reader.query('SELECT id, val FROM items WHERE id = $1', [3])).rows, [{ id: 3, val: 'reloaded3' }]);
  });
});
