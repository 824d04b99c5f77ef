// A temporary table named like a cached one: PostgreSQL searches the session's temporary schema first,
// so the session's bare `items` is its temporary table from the moment it exists — created by a
// statement, inside a function called by a plain SELECT (a batch after which the proxy runs no
// statement of its own), or for one transaction (ON COMMIT DROP). Such a session must never be served
// the real table's cached answer, nor fill the cache with its temporary rows; other sessions are served
// from the cache as before, and the session reads the real rows once its temporary table is gone or
// when it names the real table. (A session whose temporary schema exists has settings of its own: it
// shares no cached answer with sessions that have none.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const SQL = 'SELECT id, val FROM items WHERE id = $1';

describe('pg-proxy: a temporary table that shadows a cached one', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);

  before(async () => {
    db = await createProxyDatabase('temptable', 10);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`CREATE FUNCTION make_temp_items() RETURNS int LANGUAGE plpgsql AS $$
      BEGIN CREATE TEMP TABLE items (id int PRIMARY KEY, val text); INSERT INTO items VALUES (2, 'temp2'), (3, 'temp3'); RETURN 1; END $$`);
    await admin.end();
    // A read of the temporary table holds the key's fill lease and caches nothing: the lease then
    // expires, and until it does other sessions' reads of that key pass through. Short here.
    proxy = await startTestProxy(db, { fillLeaseMs: 200 });
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  /** Reads `id` on `c` until a read is a hit (other reads of it may hold its fill lease meanwhile); returns its row. */
  async function hit(c: pg.Client, text: string, id: number): Promise<unknown> {
    let row: unknown;
    await until(`a hit on ${id}`, async () => {
      const hits = proxy.metrics.hits;
      row = (await c.query(text, [id])).rows[0];
      return proxy.metrics.hits === hits + 1;
    }, 10_000);
    return row;
  }

  /** Reads `id` on `c` three times (extended protocol, or simple with a literal key); returns the rows (all three equal). */
  async function reads(c: pg.Client, id: number, literal = false, table = 'items'): Promise<unknown> {
    const read = () => (literal ? c.query(`SELECT id, val FROM ${table} WHERE id = ${id}`) : c.query(`SELECT id, val FROM ${table} WHERE id = $1`, [id]));
    const first = (await read()).rows;
    for (let i = 0; i < 2; i++) assert.deepEqual((await read()).rows, first);
    return first;
  }

  it('CREATE TEMP TABLE items: the session reads its own rows, never the cache, and fills nothing', async () => {
    const session = await clients.open();
    const other = await clients.open();
    assert.deepEqual(await clients.untilHit(session, SQL, 1), { id: 1, val: 'v1' });
    await session.query("CREATE TEMP TABLE items (id int PRIMARY KEY, val text); INSERT INTO items VALUES (1, 'temp1')");
    const hits = proxy.metrics.hits;
    assert.deepEqual(await reads(session, 1), [{ id: 1, val: 'temp1' }]);
    assert.deepEqual(await reads(session, 1, true), [{ id: 1, val: 'temp1' }]);
    assert.deepEqual(await reads(session, 5), []); // no such temporary row, though the real table has one
    assert.equal(proxy.metrics.hits, hits, 'no read of the temporary table is a hit');
    // Its temporary rows were not cached: another session reads the real table, from the cache.
    assert.deepEqual(await hit(other, SQL, 1), { id: 1, val: 'v1' });
    assert.deepEqual(await hit(other, SQL, 5), { id: 5, val: 'v5' });
    // The real table named with its schema, and once the temporary one is dropped its bare name: the
    // real rows (not served from the cache: the session's settings now name a temporary schema, and
    // the row's one cached answer is another session's).
    assert.deepEqual(await reads(session, 1, false, 'public.items'), [{ id: 1, val: 'v1' }]);
    await session.query('DROP TABLE pg_temp.items');
    assert.deepEqual(await reads(session, 1), [{ id: 1, val: 'v1' }]);
  });

  it('created by a function a plain SELECT calls: the next read is the temporary row', async () => {
    const session = await clients.open();
    assert.deepEqual(await clients.untilHit(session, SQL, 2), { id: 2, val: 'v2' });
    await session.query('SELECT make_temp_items()');
    const hits = proxy.metrics.hits;
    assert.deepEqual(await reads(session, 2), [{ id: 2, val: 'temp2' }]);
    assert.equal(proxy.metrics.hits, hits);
    const other = await clients.open();
    assert.deepEqual(await hit(other, SQL, 2), { id: 2, val: 'v2' });
  });

  it('ON COMMIT DROP: inside the transaction its rows, after the commit the real table\'s', async () => {
    const session = await clients.open();
    assert.deepEqual(await clients.untilHit(session, SQL, 4), { id: 4, val: 'v4' });
    await session.query('BEGIN');
    await session.query("CREATE TEMP TABLE items (id int PRIMARY KEY, val text) ON COMMIT DROP; INSERT INTO items VALUES (4, 'temp4')");
    assert.deepEqual((await session.query(SQL, [4])).rows, [{ id: 4, val: 'temp4' }]);
    await session.query('COMMIT');
    assert.deepEqual(await reads(session, 4), [{ id: 4, val: 'v4' }]);
    assert.deepEqual(await reads(await clients.open(), 4), [{ id: 4, val: 'v4' }]);
  });
});
