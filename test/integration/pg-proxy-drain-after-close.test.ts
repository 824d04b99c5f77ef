// A replication session's acknowledgement waits for a pass of the drainer (drained-pipe.ts), asking
// for one every 50 ms until its deadline. If the proxy closes meanwhile, a pass asked for after
// close() used to open a new drainer connection (stop() had already dropped the old one), and nothing
// ended it: a connection to PostgreSQL for as long as the process lived. Real parts: the proxy's own
// database, a real replication session; the cache refuses invalidations (a chaos wrapper), so no pass
// completes and the acknowledgement keeps asking across the close.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { DrainerStopped } from '../../src/pg-proxy/drainer.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: close() while a replication session waits for a pass of the drainer', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  before(async () => {
    db = await createProxyDatabase('drainclose', 3);
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await db?.drop();
  });

  const proxyBackends = async (): Promise<number> =>
    Number((await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'lockstep pg-proxy%'`, [db.name])).rows[0].n);

  it('leaves no drainer connection behind, and a pass asked for after close() is refused', async () => {
    const cache = new ChaosCache(createMemoryCache({ maxEntries: 100 }));
    const proxy = await startTestProxy(db, { cache, drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity });
    // Every drain() call (whether made once close() had stopped the drainer) and how it settled, seen
    // through the proxy's own drainer object (which drainAfter and close() call).
    const calls: { afterStop: boolean; settled: boolean; refused: boolean }[] = [];
    let stopped = false;
    const stop = proxy.drainer.stop.bind(proxy.drainer);
    proxy.drainer.stop = () => {
      stopped = true;
      return stop();
    };
    const drain = proxy.drainer.drain.bind(proxy.drainer);
    proxy.drainer.drain = () => {
      const call = { afterStop: stopped, settled: false, refused: false };
      calls.push(call);
      const pass = drain();
      pass.then(
        () => (call.settled = true),
        (error: unknown) => {
          call.settled = true;
          call.refused = error instanceof DrainerStopped;
        },
      );
      return pass;
    };
    const writer = new pg.Client({ connectionString: proxy.url, replication: 'database', application_name: 'drainclose writer' } as pg.ClientConfig);
    writer.on('error', () => undefined);
    await writer.connect();
    cache.faults.always('invalidateOlder', { kind: 'throw', when: 'before' });
    // Its acknowledgement is held: every pass fails on the cache, so drainAfter keeps asking.
    const acknowledged = writer.query("UPDATE items SET val = 'w' WHERE id = 1").then(
      () => 'acknowledged',
      () => 'closed',
    );
    await until('a pass failed on the write', async () => (cache.faults.injected.get('invalidateOlder') ?? 0) >= 1, 10_000);
    // The event loop stays responsive across close(): drainAfter, refused a pass, gives up rather than
    // asking again at once (a refused pass settles in a microtask: the loop would spin on microtasks,
    // no timer firing, until its 5 s deadline).
    let lastTick = performance.now();
    let longestGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - lastTick);
      lastTick = now;
    }, 20);
    await proxy.close(100); // the session is not idle: it is ended after the grace
    await until('a pass was asked for after the drainer stopped, and settled', async () => calls.some((c) => c.afterStop && c.settled), 10_000);
    assert.equal(await acknowledged, 'closed', 'the write was not acknowledged without a pass');
    await until('no lockstep pg-proxy connection left after close()', async () => (await proxyBackends()) === 0, 10_000);
    clearInterval(ticker);
    assert.ok(longestGap < 2_000, `a 20 ms timer fired at most ${Math.round(longestGap)} ms apart across close()`);
    assert.ok(
      calls.filter((c) => c.afterStop).every((c) => c.refused),
      'every pass asked for after the drainer stopped is refused',
    );
    await writer.end().catch(() => undefined);
  });
});
