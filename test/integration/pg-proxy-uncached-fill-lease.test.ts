// A point read whose answer the proxy does not cache (here: larger than maxAnswerBytes) took the key's
// fill lease with its `get` and kept it until the lease expired (fillLeaseMs): meanwhile every other
// reader of the key passed through (reason `lease`) instead of filling, so one large or otherwise
// uncacheable read shape kept the key's cacheable reads off the cache for a lease's lifetime, again
// after each such read. The lease is now given back as soon as the answer is not cached.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: the fill lease of an answer not cached', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  before(async () => {
    db = await createProxyDatabase('uncachedlease', 3);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query("UPDATE items SET val = repeat('x', 1000) WHERE id = 1"); // before the proxy: nothing to invalidate
    await c.end();
    // A lease far longer than the test: a reader after the large read can only fill if it was given back.
    proxy = await startTestProxy(db, { maxAnswerBytes: 400, fillLeaseMs: 600_000 });
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1_000);
    await db?.drop();
  });

  it('is given back at once: the next reader of the key fills, then hits', async () => {
    const large = await clients.open();
    const small = await clients.open();
    const m = proxy.metrics;
    const before = { misses: m.misses, fills: m.fills, lease: m.passThrough.lease, abandoned: m.fillsAbandoned };
    assert.equal((await large.query('SELECT val FROM items WHERE id = $1', [1])).rows[0].val.length, 1000);
    assert.equal(m.misses, before.misses + 1, 'the large read took the fill lease');
    assert.equal(m.fills, before.fills, 'its answer (over maxAnswerBytes) was not cached');
    assert.equal(m.fillsAbandoned, before.abandoned + 1, 'its lease was given back');
    assert.deepEqual((await small.query('SELECT id, n FROM items WHERE id = $1', [1])).rows, [{ id: 1, n: 0 }]);
    assert.equal(m.passThrough.lease, before.lease, 'the next reader did not pass through for the lease');
    assert.equal(m.fills, before.fills + 1, 'the next reader filled');
    const hits = m.hits;
    assert.deepEqual((await small.query('SELECT id, n FROM items WHERE id = $1', [1])).rows, [{ id: 1, n: 0 }]);
    assert.equal(m.hits, hits + 1, 'and is then served from the cache');
  });
});
