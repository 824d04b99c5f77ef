// `WHERE id = $1` means pg_catalog's `=` only while pg_catalog is searched first. PostgreSQL searches
// it first unless the search_path names it later: `SET search_path = ops, pg_catalog, public` finds an
// `ops.=` for the key's types first, and the same text then compares something else — here
// `id = $1 + 1`, so `WHERE id = 1` returns row 2. The proxy cached that answer under key 1, which no
// write to row 2 invalidates: after an UPDATE of row 2 acknowledged through the proxy, the session was
// served row 2 as it was before (and a session whose ops schema gained such an operator later was
// served the old row where PostgreSQL returns another). A fill now caches nothing while a schema other
// than the session's temporary one is searched before pg_catalog.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

const OPERATOR = `CREATE FUNCTION %s.next_eq(a int, b int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT a OPERATOR(pg_catalog.=) b + 1';
  CREATE OPERATOR %s.= (LEFTARG = int, RIGHTARG = int, FUNCTION = %s.next_eq)`;

describe('pg-proxy: an = operator searched before pg_catalog', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  const sql = 'SELECT id, val FROM items WHERE id = $1';

  before(async () => {
    db = await createProxyDatabase('opsearch', 20);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ops; CREATE SCHEMA later; CREATE SCHEMA plain; ${OPERATOR.replaceAll('%s', 'ops')}`);
    await admin.end();
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('the row the operator found, updated through the proxy, is read new (extended and simple protocol)', async () => {
    const session = await clients.open();
    await session.query('SET search_path = ops, pg_catalog, public');
    const writer = await clients.open();
    // PostgreSQL's answer in this session: row 2 for key 1, row 5 for key 4.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await session.query(sql, [1])).rows, [{ id: 2, val: 'v2' }]);
      assert.deepEqual((await session.query('SELECT id, val FROM items WHERE id = 4')).rows, [{ id: 5, val: 'v5' }]);
    }
    await writer.query("UPDATE items SET val = 'new' WHERE id IN (2, 5)");
    assert.deepEqual((await session.query(sql, [1])).rows, [{ id: 2, val: 'new' }]);
    assert.deepEqual((await session.query('SELECT id, val FROM items WHERE id = 4')).rows, [{ id: 5, val: 'new' }]);
  });

  it('an operator created later in a schema searched first: the session reads what PostgreSQL answers', async () => {
    const session = await clients.open();
    await session.query('SET search_path = later, pg_catalog, public');
    assert.deepEqual(await clients.untilHit(session, sql, 10), { id: 10, val: 'v10' }); // no such operator yet: cached
    const flushes = proxy.metrics.flushes;
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(OPERATOR.replaceAll('%s', 'later'));
    await direct.end();
    // Made straight on PostgreSQL: seen within the bypass bound, by the drainer's pass.
    await until('CREATE OPERATOR straight on PostgreSQL to flush the cached tables', async () => proxy.metrics.flushes > flushes, 5_000);
    assert.deepEqual((await session.query(sql, [10])).rows, [{ id: 11, val: 'v11' }]);
  });

  it('sessions that search pg_catalog first are still served from the cache', async () => {
    const plain = await clients.open();
    assert.deepEqual(await clients.untilHit(plain, sql, 15), { id: 15, val: 'v15' });
    const named = await clients.open();
    await named.query('SET search_path = plain, pg_catalog, public'); // a schema first that holds no such operator
    assert.deepEqual(await clients.untilHit(named, sql, 16), { id: 16, val: 'v16' });
    const temp = await clients.open();
    await temp.query('CREATE TEMP TABLE scratch (a int)'); // the temporary schema is searched first, for relations only
    assert.deepEqual(await clients.untilHit(temp, sql, 17), { id: 17, val: 'v17' });
  });
});
