// The race: a running proxy's drainer has not read a journal row yet (it lags, or the row belongs
// to a transaction that ran longer than the retention, so it is "old" the moment it commits) when
// another proxy's drainer prunes it. The pruned-xid watermark was only consulted when a drainer
// started, so the running one carried on past the gap and served the old value until its TTL.
// Every pass must check the watermark against its own cursor and flush when rows it never read
// may be gone; and a drainer's own prune must never remove a row its pass did not read.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: journal rows pruned before a running drainer read them', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  before(async () => {
    db = await createProxyDatabase('unreadpruned', 3);
  });
  after(async () => {
    await db?.drop();
  });

  it('a running proxy whose unread rows another proxy pruned flushes instead of serving the old value', async () => {
    const proxy = await startTestProxy(db, { cache: createMemoryCache({ maxEntries: 100 }), drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity });
    const client = new pg.Client({ connectionString: proxy.url });
    const direct = new pg.Client({ connectionString: db.url });
    await client.connect();
    await direct.connect();
    try {
      const read = async () => (await client.query('SELECT val FROM items WHERE id = 1')).rows[0].val as string;
      const first = await read();
      assert.equal(await read(), first);
      assert.ok(proxy.metrics.hits >= 1, 'the row is cached');
      // A write that bypasses this proxy, journaled; another proxy's drainer prunes its row before ours reads it.
      await direct.query("UPDATE items SET val = 'bypass-v2' WHERE id = 1");
      await direct.query(`WITH gone AS (DELETE FROM lockstep_proxy.journal RETURNING xid)
        INSERT INTO lockstep_proxy.pruned (one, xid) SELECT true, max(xid) FROM gone HAVING count(*) > 0
        ON CONFLICT (one) DO UPDATE SET xid = GREATEST(lockstep_proxy.pruned.xid, excluded.xid)`);
      await proxy.drainer.drain();
      assert.equal(await read(), 'bypass-v2', 'the committed bypass write is served after the next pass');
    } finally {
      await client.end();
      await direct.end();
      await proxy.close(1000);
    }
  });
});
