// A session that asks for `replication` in its startup message is piped to PostgreSQL untouched (the
// proxy's relay cannot speak the replication protocol). But such a session to the proxy's own database
// can write a cached table: a logical-replication connection (`replication=database`) runs SQL, and
// `replication=false` (also `off`, `no`, `0`) is an ordinary session. Its write was acknowledged with
// no fence, and a read through the proxy that began after the acknowledgement returned the cached row
// the write had replaced (for as long as the drainer took to reach it: here, with its poll and its
// NOTIFY wake-up off, for good). The pipe now holds each ReadyForQuery of such a session until a pass
// of the drainer that began after it was applied, as the relay does for a COMMIT PREPARED.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a replication session to the proxy\'s database', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  before(async () => {
    db = await createProxyDatabase('replsession', 5);
    // No poll and no LISTEN wake-up: only a pass the proxy asks for reaches the cache (every bound
    // the proxy promises for writes made straight on PostgreSQL rests on the poll; this session's
    // write was acknowledged through the proxy, and must be seen at once).
    proxy = await startTestProxy(db, { drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity });
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1_000);
    await db?.drop();
  });

  for (const [id, replication] of [[1, 'database'], [2, 'false'], [3, 'off']] as const) {
    it(`replication=${replication}: a write acknowledged on it is read at once through the cache`, async () => {
      const reader = await clients.open();
      const sql = 'SELECT val FROM items WHERE id = $1';
      assert.equal((await clients.untilHit<{ val: string }>(reader, sql, id)).val, `v${id}`);
      // (pg sends `replication` in the startup message; its types do not list it.)
      const writer = new pg.Client({ connectionString: proxy.url, replication } as pg.ClientConfig);
      await writer.connect();
      try {
        assert.equal(proxy.metrics.passThrough['other-database'] > 0, true, 'the session is piped');
        // Simple protocol: a logical-replication connection takes no extended-protocol message.
        await writer.query(`UPDATE items SET val = 'written-${replication}' WHERE id = ${id}`);
      } finally {
        await writer.end();
      }
      assert.equal((await reader.query(sql, [id])).rows[0].val, `written-${replication}`);
    });
  }

  it('replication commands still pass, each answer once the drainer passed (the startup\'s at once)', async () => {
    const drained = proxy.metrics.fencesDrained;
    const c = new pg.Client({ connectionString: proxy.url, replication: 'database' } as pg.ClientConfig);
    await c.connect();
    try {
      // The startup's ReadyForQuery is not held: nothing of the session can have written before it.
      assert.equal(proxy.metrics.fencesDrained, drained, 'the startup waited for no pass of the drainer');
      const { rows } = await c.query('IDENTIFY_SYSTEM');
      assert.equal(rows[0].dbname, db.name);
    } finally {
      await c.end();
    }
    assert.equal(proxy.metrics.fencesDrained, drained + 1, "the command's ReadyForQuery waited for a pass");
  });
});
