// A commit acknowledged by a ReadyForQuery 'T': COMMIT AND CHAIN (the commit starts the next
// transaction at once) and a batch that commits and then begins again. No fence runs inside the
// client's new transaction (its snapshot, its errors): the proxy acknowledges such a batch after a pass
// of its drainer that began after the commit. The proxies here poll once a minute and do not LISTEN,
// so nothing else invalidates the row in time; each case runs with announced fences and with the
// fence statement.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

for (const announcedFences of [true, false]) {
  describe(`pg-proxy: a commit that ends in a transaction (${announcedFences ? 'announced fences' : 'the fence statement'})`, { skip: service.skip, timeout: 120_000 }, () => {
    let db: ProxyDatabase;
    let proxy: PgProxy & { url: string };
    let reader: pg.Client;
    const clients = proxyClients(() => proxy);
    const cachedRead = (id: number) => clients.untilHit<{ val: string }>(reader, 'SELECT val FROM items WHERE id = $1', id);
    const read = async (id: number) => (await reader.query('SELECT val FROM items WHERE id = $1', [id])).rows[0].val as string;

    before(async () => {
      db = await createProxyDatabase(`chain${announcedFences ? 'a' : 's'}`, 10);
      proxy = await startTestProxy(db, { announcedFences, drainPollMs: 60_000, drainListen: false, bypassBoundMs: 600_000 });
      reader = await clients.open();
    });
    after(async () => {
      await clients.closeAll();
      await proxy?.close(1000);
      await db?.drop();
    });

    it('COMMIT AND CHAIN: the commit is read at once, and so is the chained transaction at its own COMMIT', async () => {
      const writer = await clients.open();
      await cachedRead(1);
      await writer.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await writer.query("UPDATE items SET val = 'chained' WHERE id = 1");
      const drained = proxy.metrics.fencesDrained;
      await writer.query('COMMIT AND CHAIN');
      assert.equal(await read(1), 'chained');
      assert.equal(proxy.metrics.fencesDrained, drained + 1);
      // The chained transaction keeps the isolation level, and its snapshot is its own first statement's.
      assert.equal((await writer.query('SHOW transaction_isolation')).rows[0].transaction_isolation, 'repeatable read');
      await cachedRead(2);
      await writer.query("UPDATE items SET val = 'second' WHERE id = 2");
      await writer.query('COMMIT');
      assert.equal(await read(2), 'second');
    });

    it('a batch that commits and begins again (simple protocol)', async () => {
      const writer = await clients.open();
      await cachedRead(3);
      await writer.query('BEGIN');
      await writer.query("UPDATE items SET val = 'then-begin' WHERE id = 3");
      await writer.query('COMMIT; BEGIN');
      assert.equal(await read(3), 'then-begin');
      await writer.query('ROLLBACK');
    });
  });
}
