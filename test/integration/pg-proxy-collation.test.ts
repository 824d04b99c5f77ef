// A text primary key with a nondeterministic collation (case-insensitive ICU): `WHERE id = 'ABC'`
// finds the row 'abc', so the answer cached under the key 'ABC' holds row 'abc', while a write to that
// row journals (and invalidates) only the key 'abc'. A later read of 'ABC' got the old row.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a text primary key with a nondeterministic collation', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string } | undefined;
  const clients = proxyClients(() => proxy!);

  before(async () => {
    db = await createProxyDatabase('collation', 1);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)");
    await admin.query("CREATE TABLE names (id text COLLATE ci PRIMARY KEY, val text NOT NULL); INSERT INTO names VALUES ('abc', 'old')");
    await admin.end();
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('a write to the row is read at once under every spelling of its key', async () => {
    proxy = await startTestProxy(db, { tables: ['items', 'names'] });
    const writer = await clients.open();
    const reader = await clients.open();
    const sql = 'SELECT id, val FROM names WHERE id = $1';
    for (let i = 0; i < 3; i++) assert.deepEqual((await reader.query(sql, ['ABC'])).rows, [{ id: 'abc', val: 'old' }]);
    await writer.query("UPDATE names SET val = 'new' WHERE id = 'abc'");
    assert.deepEqual((await reader.query(sql, ['ABC'])).rows, [{ id: 'abc', val: 'new' }]);
    // Changed to a deterministic collation while the proxy runs: cached again.
    await writer.query('ALTER TABLE names ALTER COLUMN id TYPE text COLLATE "C"');
    assert.deepEqual(await clients.untilHit(reader, sql, 'abc' as unknown as number), { id: 'abc', val: 'new' });
    // And back: the answers are not cached any more.
    await writer.query('ALTER TABLE names ALTER COLUMN id TYPE text COLLATE ci');
    for (let i = 0; i < 3; i++) assert.deepEqual((await reader.query(sql, ['ABC'])).rows, [{ id: 'abc', val: 'new' }]);
    await writer.query("UPDATE names SET val = 'newer' WHERE id = 'abc'");
    assert.deepEqual((await reader.query(sql, ['ABC'])).rows, [{ id: 'abc', val: 'newer' }]);
  });
});
