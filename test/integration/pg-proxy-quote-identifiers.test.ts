// quote_all_identifiers changes the bytes PostgreSQL sends for a column of an object-identifier type
// (regclass, regtype, regproc …): `items` becomes `"items"`. It is no reported setting (no
// ParameterStatus), and was not among the settings an answer's variant is made of: a session with it
// on was served another session's unquoted answer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: quote_all_identifiers', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);

  before(async () => {
    db = await createProxyDatabase('quoteall', 20);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("ALTER TABLE items ADD COLUMN rel regclass NOT NULL DEFAULT 'items'");
    await admin.end();
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('a session with quote_all_identifiers on gets its own bytes, not the cached unquoted answer', async () => {
    const plain = await clients.open();
    const quoting = await clients.open();
    const sql = 'SELECT id, rel FROM items WHERE id = $1';
    // A regclass column is not cached any more (its text follows the table's name: rendered-columns.ts);
    // these reads were hits before, and the mutant that caches it again is killed here.
    for (let i = 0; i < 3; i++) assert.deepEqual((await plain.query(sql, [8])).rows, [{ id: 8, rel: 'items' }]);
    await quoting.query('SET quote_all_identifiers = on');
    assert.deepEqual((await quoting.query(sql, [8])).rows, [{ id: 8, rel: '"items"' }]);
    assert.deepEqual((await quoting.query('SELECT id, rel FROM items WHERE id = 8')).rows, [{ id: 8, rel: '"items"' }]);
  });
});
