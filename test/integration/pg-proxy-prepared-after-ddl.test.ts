// A prepared statement keeps the result columns it was parsed with: once its table's columns change,
// PostgreSQL answers its next execution `ERROR 0A000 cached plan must not change result type`. A hit
// served it the answer another session filled after the change instead: rows of the new columns to a
// client that may hold the old RowDescription (drivers that describe a prepared statement once and name
// it the same in every connection), so its values were read under the wrong column names.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { raw, rawConnect, type RawConnection } from '../helpers/pg-raw.js';
import { errorCode, type Message } from '../../src/pg-proxy/framing.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import { tableDefinitionSql } from '../../src/pg-proxy/prepared-definition.js';

const service = await needService('PostgreSQL', DATABASE_URL);

const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
/** The answer's message types, with an error's SQLSTATE and a row's column count. */
const summary = (answer: Message[]) => answer.map((m) => (m.type === 'E' ? `E${errorCode(m.body)}` : m.type === 'D' ? `D${m.body.readInt16BE(0)}` : m.type)).join(' ');

describe('pg-proxy: a statement prepared before its table changed', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  const raws: RawConnection[] = [];
  let user: string;

  before(async () => {
    db = await createProxyDatabase('prepddl', 10);
    proxy = await startTestProxy(db);
    user = decodeURIComponent(new URL(db.url).username) || 'postgres';
  });
  after(async () => {
    for (const r of raws) r.close();
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  async function session(port = proxy.port): Promise<RawConnection> {
    const r = await rawConnect('127.0.0.1', port, user, db.name);
    raws.push(r);
    return r;
  }
  const prepare = (r: RawConnection, name: string, sql: string) => r.exchange([raw.parse(name, sql, [23]), raw.sync()]);
  const execute = (r: RawConnection, name: string, id: number) => r.exchange([raw.bind('', name, int4(id), 1, 0), raw.execute(''), raw.sync()]);

  it('gets the error PostgreSQL sends, not another session\'s rows of the new columns', async () => {
    const sql = 'SELECT * FROM items WHERE id = $1';
    const before = await session();
    await prepare(before, 's1', sql);
    for (let i = 0; i < 3; i++) assert.equal(summary(await execute(before, 's1', 1)), '2 D5 C Z');
    const hits = proxy.metrics.hits;
    assert.equal(summary(await execute(before, 's1', 1)), '2 D5 C Z');
    assert.equal(proxy.metrics.hits, hits + 1, 'the read was a hit');
    const writer = await clients.open();
    await writer.query('ALTER TABLE items DROP COLUMN n');
    // A session that prepares the statement now fills (and hits) the answer of four columns.
    const later = await session();
    await prepare(later, 's1', sql);
    for (let i = 0; i < 3; i++) assert.equal(summary(await execute(later, 's1', 1)), '2 D4 C Z');
    // Straight on PostgreSQL, a statement prepared before the change fails, again and again.
    const direct = await session(new URL(db.url).port === '' ? 5432 : Number(new URL(db.url).port));
    await prepare(direct, 's1', sql);
    await writer.query('ALTER TABLE items ADD COLUMN extra int');
    assert.equal(summary(await execute(direct, 's1', 1)), 'E0A000 Z');
    // Through the proxy: the same.
    await execute(later, 's1', 1); // fails too now (the column added): whatever it answers, PostgreSQL's
    const again = await session();
    await prepare(again, 's1', sql);
    for (let i = 0; i < 3; i++) assert.equal(summary(await execute(again, 's1', 1)), '2 D5 C Z');
    for (let i = 0; i < 2; i++) assert.equal(summary(await execute(before, 's1', 1)), 'E0A000 Z');
  });

  it("node-postgres' named query prepared before the change gets PostgreSQL's error", async () => {
    const query = { name: 'item_by_id', text: 'SELECT * FROM items WHERE id = $1', values: [2] };
    const early = await clients.open();
    for (let i = 0; i < 3; i++) assert.equal((await early.query(query)).rows[0].id, 2);
    const writer = await clients.open();
    await writer.query('ALTER TABLE items ADD COLUMN note text');
    const late = await clients.open();
    for (let i = 0; i < 3; i++) assert.equal((await late.query(query)).rows[0].note, null);
    // pg does not prepare again: straight on PostgreSQL this fails for as long as the connection lives.
    for (let i = 0; i < 2; i++) await assert.rejects(early.query(query), { code: '0A000' });
  });

  it("a column's collation changed (names and types the same): the statement prepared before gets PostgreSQL's error, not a hit", async () => {
    const sql = 'SELECT id, val FROM items WHERE id = $1';
    const before = await session();
    await prepare(before, 'coll', sql);
    for (let i = 0; i < 3; i++) assert.equal(summary(await execute(before, 'coll', 4)), '2 D2 C Z');
    const writer = await clients.open();
    await writer.query('ALTER TABLE items ALTER COLUMN val TYPE text COLLATE "C"');
    const later = await session();
    await prepare(later, 'coll', sql);
    let filled = false;
    for (let i = 0; i < 5 && !filled; i++) {
      const hits = proxy.metrics.hits;
      assert.equal(summary(await execute(later, 'coll', 4)), '2 D2 C Z');
      filled = proxy.metrics.hits === hits + 1;
    }
    assert.ok(filled, 'the answer of the new definition is cached');
    for (let i = 0; i < 2; i++) assert.equal(summary(await execute(before, 'coll', 4)), 'E0A000 Z');
  });

  it('the definition tells apart column lists that joined text would confuse (a name holding the separators)', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('CREATE TABLE def_x (id int4, "v:25:-1:f,3:w" int4)');
      await c.query('CREATE TABLE def_y (id int4, v text, w int4)');
      const hash = async (table: string) => (await c.query<{ d: string }>(`SELECT ${tableDefinitionSql(`'${table}'::pg_catalog.regclass`)} AS d`)).rows[0]!.d;
      assert.notEqual(await hash('def_x'), await hash('def_y'));
    } finally {
      await c.end();
    }
  });

  it('a statement whose columns did not change is served from the cache again', async () => {
    const r = await session();
    await prepare(r, 'ids', 'SELECT id FROM items WHERE id = $1');
    for (let i = 0; i < 2; i++) await execute(r, 'ids', 3);
    const writer = await clients.open();
    await writer.query('ALTER TABLE items ADD COLUMN other int');
    const other = await session();
    await prepare(other, 'ids', 'SELECT id FROM items WHERE id = $1');
    for (let i = 0; i < 2; i++) await execute(other, 'ids', 3);
    let hit = false;
    for (let i = 0; i < 5 && !hit; i++) {
      const hits = proxy.metrics.hits;
      assert.equal(summary(await execute(r, 'ids', 3)), '2 D1 C Z');
      hit = proxy.metrics.hits === hits + 1;
    }
    assert.ok(hit, 'never a hit again');
  });
});
