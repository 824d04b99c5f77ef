// The proxy's triggers disabled on a cached table (`ALTER TABLE … DISABLE TRIGGER ALL`, as pg_restore
// --disable-triggers and bulk loads do): writes then append no journal row, so no fence sees them.
// The ALTER flushed the table, but the next fill cached the row again, and an UPDATE acknowledged
// through the proxy was followed by the old row. The fill checks, in its own snapshot, that the
// proxy's triggers are there and fire in every session (enabled ALWAYS, as the proxy installs them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
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

  // ENABLE TRIGGER ALL (after a bulk load) enables them for origin sessions only: a write under
  // session_replication_role = replica (a logical replication subscription's apply worker, some
  // loaders) fires neither, so the writer runs under it.
  for (const disable of ['DISABLE TRIGGER ALL', 'DISABLE TRIGGER USER', 'ENABLE REPLICA TRIGGER …', 'ENABLE TRIGGER ALL']) {
    it(`ALTER TABLE items ${disable}: a write acknowledged through the proxy is read at once`, async () => {
      const writer = await clients.open();
      const reader = await clients.open();
      // ENABLE REPLICA: each trigger by its name (replica-only triggers fire in no origin session).
      if (disable === 'ENABLE REPLICA TRIGGER …') await alterEach(writer, 'ENABLE REPLICA TRIGGER');
      else await writer.query(`ALTER TABLE items ${disable}`);
      if (disable === 'ENABLE TRIGGER ALL') await writer.query('SET session_replication_role = replica');
      const refused = proxy.metrics.fillsRefusedTriggers;
      const warnings: string[] = [];
      const onWarning = (w: Error) => void warnings.push(w.message);
      process.on('warning', onWarning);
      try {
        for (let i = 0; i < 3; i++) assert.deepEqual((await reader.query(sql, [7])).rows, [{ id: 7, val: 'v7' }]);
        // Said, not only done: a metric and one warning naming the table and the fix.
        assert.ok(proxy.metrics.fillsRefusedTriggers > refused, 'counted as refused for its triggers');
        await until('the warning is emitted', async () => warnings.some((w) => w.includes('public.items is not cached') && w.includes('ENABLE ALWAYS TRIGGER')));
        await writer.query("UPDATE items SET val = 'new' WHERE id = 7");
        assert.deepEqual((await reader.query(sql, [7])).rows, [{ id: 7, val: 'new' }]);
        await reader.query('SELECT id, val FROM items WHERE id = 7');
        await writer.query('TRUNCATE items');
        assert.deepEqual((await reader.query('SELECT id, val FROM items WHERE id = 7')).rows, []);
      } finally {
        process.off('warning', onWarning);
        await writer.query('RESET session_replication_role');
        await alterEach(writer, 'ENABLE ALWAYS TRIGGER');
        await writer.query("INSERT INTO items (id, val) VALUES (7, 'v7') ON CONFLICT (id) DO UPDATE SET val = 'v7'");
      }
      // Enabled again as the proxy installs them: cached as before.
      assert.deepEqual(await clients.untilHit(reader, sql, 7), { id: 7, val: 'v7' });
    });
  }

  it('DDL made straight on PostgreSQL under session_replication_role = replica flushes the table (its event triggers fire ALWAYS)', async () => {
    const reader = await clients.open();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    const typeOfVal = async () => (await reader.query(sql, [7])).fields[1]?.dataTypeID;
    try {
      await clients.untilHit(reader, sql, 7);
      assert.equal(await typeOfVal(), 25, 'text, from the cache');
      await direct.query('SET session_replication_role = replica');
      await direct.query('ALTER TABLE items ALTER COLUMN val TYPE varchar(20)');
      await until('the new column type is answered', async () => (await typeOfVal()) === 1043, 10_000);
    } finally {
      await direct.query('RESET session_replication_role');
      await direct.query('ALTER TABLE items ALTER COLUMN val TYPE text');
      await direct.end();
    }
  });

  /** `ALTER TABLE items <how> <name>` for each of the table's triggers (the proxy's two). */
  async function alterEach(client: Awaited<ReturnType<typeof clients.open>>, how: string): Promise<void> {
    const { rows } = await client.query<{ tgname: string }>("SELECT tgname FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal");
    for (const { tgname } of rows) await client.query(`ALTER TABLE items ${how} "${tgname}"`);
  }
});
