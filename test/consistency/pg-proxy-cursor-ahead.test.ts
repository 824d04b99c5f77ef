// The race: the proxy's cursor is a transaction id saved in the cache. A database restored from a
// backup, or dumped and loaded into a new cluster under the same name, hands out transaction ids
// below that cursor; a proxy that trusted it read only rows with xid >= the cursor, so every
// bypass write was skipped until the new cluster's ids caught up (months), each served stale until
// its TTL. A cursor past the database's transaction ids is impossible: it proves nothing about the
// cache, so the proxy replays what is retained (after a flush if rows were ever pruned).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { journalIdOf } from '../../src/pg-proxy/context.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a saved cursor past the database\'s transaction ids', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  before(async () => {
    db = await createProxyDatabase('cursorahead', 3);
  });
  after(async () => {
    await db?.drop();
  });

  it('a restarted proxy whose cursor is ahead of a restored or recreated database replays the journal instead of skipping it', async () => {
    const cache = createMemoryCache({ maxEntries: 100 });
    const options = { cache, drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity };
    const first = await startTestProxy(db, options);
    const viaFirst = new pg.Client({ connectionString: first.url });
    await viaFirst.connect();
    const before = (await viaFirst.query('SELECT val FROM items WHERE id = 1')).rows[0].val as string;
    assert.equal((await viaFirst.query('SELECT val FROM items WHERE id = 1')).rows[0].val, before);
    assert.ok(first.metrics.hits >= 1, 'the row is cached');
    await viaFirst.end();
    await first.close(1000);
    // The database now hands out ids far below the cursor the cache kept (a restore, a new cluster).
    await cache.saveJournalCursor(journalIdOf(first.cacheScope), { id: 2 ** 52 });
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query("UPDATE items SET val = 'after-restore' WHERE id = 1");
    await direct.end();
    const second = await startTestProxy(db, options);
    const viaSecond = new pg.Client({ connectionString: second.url });
    await viaSecond.connect();
    try {
      await second.drainer.drain();
      assert.equal((await viaSecond.query('SELECT val FROM items WHERE id = 1')).rows[0].val, 'after-restore');
    } finally {
      await viaSecond.end();
      await second.close(1000);
    }
  });
});
