// The race: when the bypass drainer (re)connects it decides where to start. A cache that holds
// nothing may start "now" (the snapshot's xmin): no older value of any key can be in it. But the
// drainer asked the cache first and read the snapshot after: a read that filled the cache between
// the two, followed by a bypass write that committed before the snapshot, left a value older than
// that write in the cache, and the write's journal row below the start, never replayed. The proxy
// then counted the write as covered (its pass began after the commit) and served the old row until
// its TTL. The engine's drainer reads the journal's head first and asks the cache after
// (journal-start.ts); the proxy's must too. Real parts: the proxy, its memory cache, PostgreSQL; a
// relay holds the drainer's snapshot query back (as a slow network would) while the read and the
// bypass write happen.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import type { CacheAdapter } from '../../src/types.js';
import { startAppHoldRelay, type AppHoldRelay } from '../helpers/app-hold-relay.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) assert.fail(`${what} (not within ${ms} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('pg-proxy: the drainer reconnects to an empty cache while a read fills it', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let relay: AppHoldRelay;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  before(async () => {
    db = await createProxyDatabase('emptyrestart', 3);
    relay = await startAppHoldRelay(db.url, 'lockstep pg-proxy drainer');
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await relay?.close();
    await db?.drop();
  });

  it('a bypass write committed before the start snapshot is invalidated, not skipped', async () => {
    const memory = createMemoryCache({ maxEntries: 100 });
    // The moment the drainer asks whether the cache is empty, the relay holds its next query.
    let armed = false;
    let asked = false;
    const cache = new Proxy(memory, {
      get(target, property) {
        if (property === 'isEmpty') {
          return () => {
            const empty = target.isEmpty!();
            if (armed) {
              armed = false;
              asked = true;
              relay.hold();
            }
            return empty;
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as CacheAdapter;
    // A bound far above this test's steps: the question is what the drainer invalidates, not when.
    const proxy = await startTestProxy({ ...db, url: relay.urlFor(db.url) }, { cache, drainListen: false, drainPollMs: 20, bypassBoundMs: 30_000 });
    const session = new pg.Client({ connectionString: proxy.url });
    await session.connect();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    const read = async () => (await session.query('SELECT val FROM items WHERE id = $1', [1])).rows[0]?.val as string;
    try {
      // The drainer's connection is lost; it reconnects to a cache that holds nothing.
      armed = true;
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lockstep pg-proxy drainer'`, [db.name]);
      await until('the drainer asked the cache', () => asked);
      // Meanwhile: a read fills the row, then a write straight to PostgreSQL commits.
      assert.equal(await read(), 'v1');
      const hits = proxy.metrics.hits;
      assert.equal(await read(), 'v1');
      assert.equal(proxy.metrics.hits, hits + 1, 'the row is cached');
      await direct.query("UPDATE items SET val = 'bypassed' WHERE id = 1");
      const committedAt = performance.now();
      relay.release();
      // The drainer passes with a snapshot taken after the commit: the write counts as covered.
      await until('a pass after the commit', () => proxy.bypass.coveredAt > committedAt);
      assert.equal(await read(), 'bypassed', 'a bypass write committed before the drainer\'s pass was never invalidated: the old row is served');
    } finally {
      relay.release();
      await session.end();
      await direct.end();
      await proxy.close(1000);
    }
  });
});
