// The fill lease of a point read whose answer is not cached. Given back at once (invalidateOlder at
// version 0) when the reason is the answer's own (over maxAnswerBytes, several rows, an error) or the
// session's (its search_path): another session may fill. For a reason of the table's (here row-level
// security), every reader of the key would be refused alike, and giving the lease back made each run the whole fill (a cache round trip, a
// REPEATABLE READ transaction with the version and catalog queries, a ROLLBACK, another cache call)
// where the first reader's lease let the others pass through cheaply. And the give-back is not waited
// for: a slow cache delayed the session's next batch.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import type { CacheAdapter } from '../../src/types.js';

const service = await needService('PostgreSQL', DATABASE_URL);

async function onDatabase(db: ProxyDatabase, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query(sql);
  await c.end();
}

describe('pg-proxy: a table whose answers are never cached keeps the fill lease', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  before(async () => {
    db = await createProxyDatabase('keptlease', 3);
    proxy = await startTestProxy(db, { fillLeaseMs: 600_000 });
    // Enabled after the proxy started (it refuses such a table at start): the owner reads past it; the proxy never shares it.
    const flushes = proxy.metrics.flushes;
    await onDatabase(db, 'ALTER TABLE items ENABLE ROW LEVEL SECURITY');
    // The DDL's flush (by the drainer) voids fill leases: wait for it, so it cannot void the test's.
    await until('the DDL flush applied', async () => proxy.metrics.flushes > flushes, 10_000);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1_000);
    await db?.drop();
  });

  it('the first reader fills and keeps the lease; the others pass through for it', async () => {
    const readers = [await clients.open(), await clients.open()];
    const m = proxy.metrics;
    const before = { misses: m.misses, fills: m.fills, lease: m.passThrough.lease, abandoned: m.fillsAbandoned };
    const reads = 6;
    for (let i = 0; i < reads; i++) {
      assert.deepEqual((await readers[i % 2]!.query('SELECT id, n FROM items WHERE id = $1', [1])).rows, [{ id: 1, n: 0 }]);
    }
    assert.equal(m.fills, before.fills, 'row-level security: no answer is cached');
    assert.equal(m.misses, before.misses + 1, 'one fill attempt only');
    assert.equal(m.passThrough.lease, before.lease + reads - 1, 'every later reader passed through for the lease');
    assert.equal(m.fillsAbandoned, before.abandoned, 'the lease was not given back');
  });
});

describe("pg-proxy: a session's own reason gives the fill lease back", { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  before(async () => {
    db = await createProxyDatabase('sessionlease', 3);
    await onDatabase(db, 'CREATE SCHEMA shadow; CREATE TABLE shadow.items (id int PRIMARY KEY, n int); INSERT INTO shadow.items VALUES (1, 7)');
    proxy = await startTestProxy(db, { fillLeaseMs: 600_000 });
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1_000);
    await db?.drop();
  });

  it('a session whose search_path finds another items reads it uncached; a plain session then fills the key', async () => {
    const shadowed = await clients.open();
    await shadowed.query('SET search_path = shadow, public');
    const plain = await clients.open();
    const m = proxy.metrics;
    assert.deepEqual((await shadowed.query('SELECT id, n FROM items WHERE id = $1', [1])).rows, [{ id: 1, n: 7 }]);
    const fills = m.fills;
    // The give-back is not waited for: the plain session reads until it fills (with the lease kept, it
    // would pass through for it for fillLeaseMs, 10 minutes).
    await until('the plain session fills the key', async () => {
      assert.deepEqual((await plain.query('SELECT id, n FROM items WHERE id = $1', [1])).rows, [{ id: 1, n: 0 }]);
      return m.fills > fills;
    }, 10_000);
  });
});

describe('pg-proxy: the give-back of a fill lease is not waited for', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let givesBackPending = 0;
  before(async () => {
    db = await createProxyDatabase('slowgiveback', 3);
    await onDatabase(db, "UPDATE items SET val = repeat('x', 1000) WHERE id = 1");
    const memory = createMemoryCache({ maxEntries: 10_000 });
    // A cache slow to answer the give-back (invalidateOlder at version 0) until the test releases it.
    const cache = new Proxy(memory, {
      get(target, property, receiver) {
        if (property === 'invalidateOlder') {
          return async (key: string, version: number) => {
            if (version === 0) {
              givesBackPending++;
              await released;
              givesBackPending--;
            }
            return target.invalidateOlder(key, version);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as CacheAdapter;
    proxy = await startTestProxy(db, { cache, maxAnswerBytes: 400, fillLeaseMs: 600_000 });
  });
  after(async () => {
    release();
    await clients.closeAll();
    await proxy?.close(1_000);
    await db?.drop();
  });

  it("the session's next batch runs while the cache has not answered it", async () => {
    const reader = await clients.open();
    const m = proxy.metrics;
    const abandoned = m.fillsAbandoned;
    assert.equal((await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0].val.length, 1000);
    await until('the give-back reached the cache', async () => givesBackPending === 1);
    // Waited for, this batch would wait for the cache (here: forever, the test's timeout says so).
    const next = reader.query('SELECT 2 AS two');
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the next batch waited for the give-back')), 20_000).unref());
    assert.deepEqual((await Promise.race([next, deadline])).rows, [{ two: 2 }]);
    assert.equal(givesBackPending, 1, 'the give-back was still pending');
    release();
    await until('the lease was given back once the cache answered', async () => m.fillsAbandoned === abandoned + 1);
  });
});
