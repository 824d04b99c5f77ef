// A relation named like a cached table created (or renamed, or moved, or its schema renamed) into a
// schema that comes first in a session's search_path: PostgreSQL resolves the session's next `SELECT …
// FROM items` to it. The proxy checks which relation a bare name resolves to when it reads the session's
// settings — after a pass-through, or at a fill — but a session that only read from the cache kept its
// old resolution, and was served the cached table's row instead of the new relation's. DDL that does
// not name the cached table did not flush it; the event trigger now flushes on such a command, and the
// session's next read is a miss whose fill reads the resolution again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a table that comes to shadow a cached one in a session’s search_path', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  const sql = 'SELECT id, val FROM items WHERE id = $1';

  before(async () => {
    db = await createProxyDatabase('shadowing', 20);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("CREATE SCHEMA shadow; CREATE SCHEMA staging; CREATE TABLE staging.items (id int PRIMARY KEY, val text NOT NULL); INSERT INTO staging.items VALUES (10, 'staged')");
    await admin.end();
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  /** Waits (bounded) until the drainer applied a flush journaled straight on PostgreSQL. */
  async function flushedSince(count: number): Promise<boolean> {
    const deadline = Date.now() + 5_000;
    while (proxy.metrics.flushes === count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return proxy.metrics.flushes > count;
  }

  it('created straight on PostgreSQL: the shadowed session reads the new table', async () => {
    const shadowed = await clients.open();
    await shadowed.query('SET search_path = shadow, public');
    const other = await clients.open();
    assert.deepEqual(await clients.untilHit(shadowed, sql, 9), { id: 9, val: 'v9' });
    const flushes = proxy.metrics.flushes;
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query("CREATE TABLE shadow.items (id int PRIMARY KEY, val text NOT NULL); INSERT INTO shadow.items VALUES (9, 'shadow')");
    await direct.end();
    assert.ok(await flushedSince(flushes), 'a relation named items created straight on PostgreSQL flushed the cached items');
    await clients.untilHit(other, sql, 9); // another session, whose items is public.items, fills it again
    assert.deepEqual((await shadowed.query(sql, [9])).rows, [{ id: 9, val: 'shadow' }]);
    assert.deepEqual((await shadowed.query('SELECT id, val FROM items WHERE id = 9')).rows, [{ id: 9, val: 'shadow' }]);
  });

  it('a schema holding an items renamed into the search_path through the proxy: the shadowed session reads it', async () => {
    const shadowed = await clients.open();
    await shadowed.query('SET search_path = live, public'); // no schema live yet
    const writer = await clients.open();
    assert.deepEqual(await clients.untilHit(shadowed, sql, 10), { id: 10, val: 'v10' });
    // The statement names no items: only the event trigger sees what the rename resolves to.
    await writer.query('ALTER SCHEMA staging RENAME TO live');
    assert.deepEqual((await shadowed.query(sql, [10])).rows, [{ id: 10, val: 'staged' }]);
  });
});
