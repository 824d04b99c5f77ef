// A table alias with a column list renames the table's columns: in `SELECT * FROM items AS t(val, id)
// WHERE id = $1`, `id` is the table's `val` column. The classifier took the alias's name and ignored
// its columns, so it read `id` as the primary key: the answer (the row whose val is '5') was cached
// under key 5, and a write to that row (journaled under its real key, 17) did not invalidate it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a table alias that renames the columns', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);

  before(async () => {
    db = await createProxyDatabase('aliascols', 20);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('a write to the row found is read at once (extended and simple protocol)', async () => {
    const writer = await clients.open();
    const reader = await clients.open();
    await writer.query("UPDATE items SET val = '5' WHERE id = 17");
    const extended = 'SELECT t.val AS real_id, n FROM items AS t(val, id) WHERE id = $1';
    const simple = "SELECT t.val AS real_id, n FROM items AS t(val, id) WHERE id = '5'";
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await reader.query(extended, ['5'])).rows, [{ real_id: 17, n: 0 }]);
      assert.deepEqual((await reader.query(simple)).rows, [{ real_id: 17, n: 0 }]);
    }
    await writer.query('UPDATE items SET n = 99 WHERE id = 17');
    assert.deepEqual((await reader.query(extended, ['5'])).rows, [{ real_id: 17, n: 99 }]);
    assert.deepEqual((await reader.query(simple)).rows, [{ real_id: 17, n: 99 }]);
  });
});
