// `lockstep audit --pg-proxy` while the proxy's clients write: a write committed, fenced and filled
// again between the audit's read of PostgreSQL and its look at the cache leaves an answer ahead of
// what the audit read, which is no defect. Before, the audit confirmed a suspect with one more look,
// and a write before each of the two looks got a healthy key counted (and, with repair, removed) as
// D. Writes here run inside the cache's scan and peek (a wrapper of the same port), so the race is exact.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { auditPgProxy } from '../../src/pg-proxy/audit.js';
import type { CacheAdapter } from '../../src/types.js';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const SELECT = 'SELECT * FROM items WHERE id = $1';

describe('lockstep audit --pg-proxy under writes through the proxy', () => {
  let skip: string | false = false;
  let db: ProxyDatabase | undefined;
  const cache = createMemoryCache({ maxEntries: 1_000 });
  let proxy: Awaited<ReturnType<typeof startTestProxy>> | undefined;
  const clients = proxyClients(() => proxy!);

  before(async () => {
    skip = (await needService('PostgreSQL', DATABASE_URL)).skip;
    if (skip) return;
    db = await createProxyDatabase('auditw', 3);
    proxy = await startTestProxy(db, { cache });
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('an answer rewritten before each look is not counted D, and repair removes nothing; a stale answer is still found', async (t) => {
    if (skip) return t.skip(skip);
    const client = await clients.open();
    await clients.untilHit(client, SELECT, 1);
    // A write through the proxy (then its row read until the new answer is cached: the fence removed
    // the old one) after the scan listed key 1's answer and before PostgreSQL is read (the scan's
    // answer is then behind: a suspect), and again before the confirming look at the cache.
    const rewrite = async () => {
      await client.query('UPDATE items SET n = n + 1 WHERE id = 1');
      await clients.untilHit(client, SELECT, 1);
    };
    let racing = 2;
    const racingCache: CacheAdapter = Object.assign(Object.create(cache) as CacheAdapter, {
      async *scan(prefix: string) {
        yield* cache.scan(prefix);
        racing--;
        await rewrite();
      },
      async peek(key: string) {
        if (key.endsWith(':1') && racing === 1) {
          racing--;
          await rewrite();
        }
        return cache.peek(key);
      },
    });
    const [report] = await auditPgProxy({ upstream: db!.url, cache: racingCache, tables: ['items'], repair: true });
    assert.equal(racing, 0, 'both racing writes ran');
    assert.deepEqual({ D: report!.counts.D, E: report!.counts.E }, { D: 0, E: 0 }, JSON.stringify(report!.examples));
    assert.equal(report!.repair.attempted, 0);
    const hits = proxy!.metrics.hits;
    await client.query(SELECT, [1]);
    assert.equal(proxy!.metrics.hits, hits + 1, 'the answer was left cached');

    // A real defect is still proven at once: with the proxy stopped (no drainer), a write straight to
    // PostgreSQL leaves key 2's cached answer below the committed version.
    await clients.untilHit(client, SELECT, 2);
    await clients.closeAll();
    await proxy!.close(1000);
    proxy = undefined;
    const straight = new pg.Client({ connectionString: db!.url });
    await straight.connect();
    await straight.query('UPDATE items SET n = n + 1 WHERE id = 2');
    await straight.end();
    const [stale] = await auditPgProxy({ upstream: db!.url, cache, tables: ['items'] });
    assert.equal(stale!.counts.D, 1, JSON.stringify(stale!.examples));
  });
});
