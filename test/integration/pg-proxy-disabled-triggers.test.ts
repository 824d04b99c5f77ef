// The proxy's triggers disabled on a cached table (`ALTER TABLE … DISABLE TRIGGER ALL`, as pg_restore
// --disable-triggers and bulk loads do): writes then append no journal row, so no fence sees them.
// The ALTER flushed the table, but the next fill cached the row again, and an UPDATE acknowledged
// through the proxy was followed by the old row. The fill checks, in its own snapshot, that the
// proxy's triggers are there and fire (enabled for origin sessions, or always).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe("pg-proxy: a cached table whose proxy triggers are disabled", { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  const sql = 'SELECT id, val FROM items WHERE id = $1';

  before(async () => {
    db = await createProxyDatabase('disabledtrg', 20);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  for (const disable of ['DISABLE TRIGGER ALL', 'DISABLE TRIGGER USER', 'ENABLE REPLICA TRIGGER …']) {
    it(`ALTER TABLE items ${disable}: a write acknowledged through the proxy is read at once`, async () => {
      const writer = await clients.open();
      const reader = await clients.open();
      // ENABLE REPLICA: each trigger by its name (replica-only triggers fire in no origin session).
      if (disable === 'ENABLE REPLICA TRIGGER …') {
        const { rows } = await writer.query<{ tgname: string }>("SELECT tgname FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal");
        for (const { tgname } of rows) await writer.query(`ALTER TABLE items ENABLE REPLICA TRIGGER "${tgname}"`);
      } else await writer.query(`ALTER TABLE items ${disable}`);
      try {
        for (let i = 0; i < 3; i++) assert.deepEqual((await reader.query(sql, [7])).rows, [{ id: 7, val: 'v7' }]);
        await writer.query("UPDATE items SET val = 'new' WHERE id = 7");
        assert.deepEqual((await reader.query(sql, [7])).rows, [{ id: 7, val: 'new' }]);
        await reader.query('SELECT id, val FROM items WHERE id = 7');
        await writer.query('TRUNCATE items');
        assert.deepEqual((await reader.query('SELECT id, val FROM items WHERE id = 7')).rows, []);
      } finally {
        await writer.query('ALTER TABLE items ENABLE TRIGGER ALL');
        await writer.query("INSERT INTO items (id, val) VALUES (7, 'v7') ON CONFLICT (id) DO UPDATE SET val = 'v7'");
      }
      // Enabled again: cached as before.
      assert.deepEqual(await clients.untilHit(reader, sql, 7), { id: 7, val: 'v7' });
    });
  }
});
