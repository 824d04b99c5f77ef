// Columns whose text PostgreSQL renders from other objects' definitions, not from the row alone: a
// `regclass`/`regrole` (the object's current name), and a composite of a table's row type (the table's
// current columns: `ALTER TABLE addr ADD COLUMN zip` makes `(s,c)` read `(s,c,)`). Such a change writes
// no row of the cached table and names none of its tables, so no fence and no DDL flush saw it: before,
// the cached answer kept the old text for good (through the proxy and straight on PostgreSQL).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const ROLE = `lockstep_rendered_${process.pid}`;

describe('pg-proxy: columns rendered from other objects', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let admin: pg.Client;
  let proxy: PgProxy & { url: string } | undefined;
  const clients = proxyClients(() => proxy!);

  before(async () => {
    db = await createProxyDatabase('rendered', 3);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${ROLE}; DROP ROLE IF EXISTS ${ROLE}_new; CREATE ROLE ${ROLE}`);
    await admin.query(`CREATE TABLE other (id int PRIMARY KEY);
      CREATE TABLE refs (id int PRIMARY KEY, rel regclass, who regrole);
      INSERT INTO refs VALUES (1, 'other', '${ROLE}'), (2, 'other', '${ROLE}');
      CREATE TABLE addr (street text, city text);
      CREATE TABLE people (id int PRIMARY KEY, home addr, homes addr[]);
      INSERT INTO people VALUES (1, ROW('s', 'c'), ARRAY[ROW('s', 'c')::addr]), (2, ROW('t', 'd'), NULL)`);
    proxy = await startTestProxy(db, { tables: ['items', 'refs', 'people'] });
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await admin?.end();
    await db?.drop();
    const server = new pg.Client({ connectionString: DATABASE_URL });
    await server.connect();
    await server.query(`DROP ROLE IF EXISTS ${ROLE}; DROP ROLE IF EXISTS ${ROLE}_new`);
    await server.end();
  });

  /** Reads `sql` through the proxy a few times (a miss, then what would be hits). */
  async function readSeveral(reader: pg.Client, sql: string, key: number): Promise<unknown[]> {
    let rows: unknown[] = [];
    for (let i = 0; i < 3; i++) rows = (await reader.query(sql, [key])).rows;
    return rows;
  }
  const direct = async (sql: string, key: number) => (await admin.query(sql, [key])).rows;

  it('a regclass column after its table is renamed through the proxy (extended and simple protocol)', async () => {
    const reader = await clients.open();
    const writer = await clients.open();
    const sql = 'SELECT id, rel, who FROM refs WHERE id = $1';
    assert.deepEqual(await readSeveral(reader, sql, 1), [{ id: 1, rel: 'other', who: ROLE }]);
    for (let i = 0; i < 3; i++) await reader.query('SELECT id, rel FROM refs WHERE id = 1');
    await writer.query('ALTER TABLE other RENAME TO other_renamed');
    assert.deepEqual((await reader.query(sql, [1])).rows, [{ id: 1, rel: 'other_renamed', who: ROLE }]);
    assert.deepEqual((await reader.query('SELECT id, rel FROM refs WHERE id = 1')).rows, [{ id: 1, rel: 'other_renamed' }]);
  });

  it('a regrole column after the role is renamed straight on PostgreSQL (within the bypass bound)', async () => {
    const reader = await clients.open();
    const sql = 'SELECT id, who FROM refs WHERE id = $1';
    await readSeveral(reader, sql, 2);
    await admin.query(`ALTER ROLE ${ROLE} RENAME TO ${ROLE}_new`);
    const expected = await direct(sql, 2);
    assert.deepEqual(expected, [{ id: 2, who: `${ROLE}_new` }]);
    await until('the renamed role read through the proxy', async () => JSON.stringify((await reader.query(sql, [2])).rows) === JSON.stringify(expected), 5_000);
  });

  it("a composite of a table's row type after a column is added through the proxy", async () => {
    const reader = await clients.open();
    const writer = await clients.open();
    const sql = 'SELECT * FROM people WHERE id = $1';
    assert.deepEqual(await readSeveral(reader, sql, 1), [{ id: 1, home: '(s,c)', homes: '{"(s,c)"}' }]);
    await writer.query('ALTER TABLE addr ADD COLUMN zip text');
    assert.deepEqual((await reader.query(sql, [1])).rows, [{ id: 1, home: '(s,c,)', homes: '{"(s,c,)"}' }]);
  });

  it("a composite of a table's row type after a column is dropped straight on PostgreSQL (within the bypass bound)", async () => {
    const reader = await clients.open();
    const sql = 'SELECT id, home FROM people WHERE id = $1';
    await readSeveral(reader, sql, 2);
    await admin.query('ALTER TABLE addr DROP COLUMN city');
    const expected = await direct(sql, 2);
    assert.deepEqual(expected, [{ id: 2, home: '(t,)' }]);
    await until('the changed row type read through the proxy', async () => JSON.stringify((await reader.query(sql, [2])).rows) === JSON.stringify(expected), 5_000);
  });

  it('a session whose temporary table is named pg_attribute still finds the regclass column: never a hit', async () => {
    const reader = await clients.open();
    // A key of its own: the other tests' reads of refs hold their keys' fill leases (a table refused).
    await admin.query("INSERT INTO refs VALUES (3, 'items', NULL)");
    await reader.query('CREATE TEMP TABLE pg_attribute (attrelid oid, attnum int2, attisdropped bool, atttypid oid)');
    const hits = proxy!.metrics.hits;
    const fills = proxy!.metrics.fills;
    await readSeveral(reader, 'SELECT id, rel FROM refs WHERE id = $1', 3);
    assert.equal(proxy!.metrics.hits, hits, 'no hit');
    assert.equal(proxy!.metrics.fills, fills, 'nothing cached');
  });

  it('a table without such columns is still cached', async () => {
    const reader = await clients.open();
    assert.equal((await clients.untilHit<{ id: number }>(reader, 'SELECT id, val FROM items WHERE id = $1', 2)).id, 2);
  });
});
