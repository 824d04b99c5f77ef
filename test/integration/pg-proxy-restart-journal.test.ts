// The journal invariant for the proxy's drainer (docs/protocol.md): a restarted proxy over a cache
// that kept its values never trusts a cursor that rows were pruned past, nor a missing cursor once
// rows were pruned: it flushes the cached tables instead. Without that, a write committed while no
// proxy ran, whose journal row another deployment's drainer pruned, stays hidden until the TTL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import type { CacheAdapter } from '../../src/types.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

/** Another deployment's drainer pruned every journal row so far (as the proxy's own prune does). */
async function pruneEverything(db: ProxyDatabase): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(`WITH gone AS (DELETE FROM lockstep_proxy.journal RETURNING xid)
      INSERT INTO lockstep_proxy.pruned (one, xid) SELECT true, max(xid) FROM gone HAVING count(*) > 0
      ON CONFLICT (one) DO UPDATE SET xid = GREATEST(lockstep_proxy.pruned.xid, excluded.xid)`);
  } finally {
    await c.end();
  }
}

async function bypassUpdate(db: ProxyDatabase, val: string): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query('UPDATE items SET val = $1 WHERE id = 1', [val]).finally(() => c.end());
}

describe('pg-proxy restart: the drainer never skips a pruned row', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  before(async () => {
    db = await createProxyDatabase('restart', 3);
  });
  after(async () => {
    await db?.drop();
  });

  /** v1 cached through a proxy that then stops; a bypass write lands and its row is pruned elsewhere. */
  async function staleCacheAfterPrune(cache: CacheAdapter, val: string): Promise<void> {
    const first = await startTestProxy(db, { cache, drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity });
    const c = new pg.Client({ connectionString: first.url });
    await c.connect();
    const before = (await c.query('SELECT val FROM items WHERE id = 1')).rows[0].val;
    assert.equal((await c.query('SELECT val FROM items WHERE id = 1')).rows[0].val, before);
    assert.ok(first.metrics.hits >= 1, 'the row is cached');
    await c.end();
    await first.close(1000);
    await bypassUpdate(db, val);
    await pruneEverything(db);
  }

  async function readThroughNewProxy(cache: CacheAdapter): Promise<string> {
    const proxy = await startTestProxy(db, { cache, drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity });
    const c = new pg.Client({ connectionString: proxy.url });
    await c.connect();
    try {
      return (await c.query('SELECT val FROM items WHERE id = 1')).rows[0].val as string;
    } finally {
      await c.end();
      await proxy.close(1000);
    }
  }

  it('a saved cursor that rows were pruned past is not trusted: the cached tables are flushed', async () => {
    const cache = createMemoryCache({ maxEntries: 100 });
    await staleCacheAfterPrune(cache, 'pruned-past-cursor');
    assert.equal(await readThroughNewProxy(cache), 'pruned-past-cursor');
  });

  it('a lost cursor after rows were pruned flushes the cached tables instead of replaying only what is retained', async () => {
    const cache = createMemoryCache({ maxEntries: 100 });
    await staleCacheAfterPrune(cache, 'pruned-no-cursor');
    const lost: CacheAdapter = Object.assign(Object.create(cache) as CacheAdapter, { loadJournalCursor: () => undefined });
    assert.equal(await readThroughNewProxy(lost), 'pruned-no-cursor');
  });
});
