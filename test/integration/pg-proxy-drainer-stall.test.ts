// The bypass bound when the drainer's connection hangs. The drainer is what invalidates writes that
// bypass the proxy; if its connection stops answering (a partition, an address moved to another
// server after a failover) while the cache keeps answering, a bypass write would stay hidden behind a
// cached row for as long as it hangs. The proxy serves cached answers only while the drainer's last
// complete pass began less than `bypassBoundMs` ago; after that, reads go to PostgreSQL. Here a relay
// in front of PostgreSQL stops forwarding (the proxy's sessions and its drainer go through it), a
// write is made straight to PostgreSQL, and a read through the proxy must never return the old row.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const BOUND_MS = 500;

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, ms = 15_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

describe('pg-proxy: a drainer whose connection hangs stops the cache from serving', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let relay: StallRelay;
  let proxy: PgProxy & { url: string };
  let session: pg.Client;
  let direct: pg.Client;
  before(async () => {
    db = await createProxyDatabase('stall', 3);
    relay = await startStallRelay(db.url);
    proxy = await startTestProxy({ ...db, url: relay.urlFor(db.url) }, { bypassBoundMs: BOUND_MS });
    session = new pg.Client({ connectionString: proxy.url });
    session.on('error', () => undefined);
    await session.connect();
    direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
  });
  after(async () => {
    relay?.resume();
    await session?.end().catch(() => undefined);
    await direct?.end();
    await proxy?.close(1000);
    await relay?.close();
    await db?.drop();
  });

  const read = async () => (await session.query('SELECT val FROM items WHERE id = $1', [1])).rows[0]?.val as string;

  it('after the bound, reads go to PostgreSQL and see the bypass write; once the drainer is back, hits resume', async () => {
    // Cached.
    const hitsBefore = proxy.metrics.hits;
    assert.ok(await waitFor('a hit', async () => (await read()) === 'v1' && proxy.metrics.hits > hitsBefore), 'the row was never served from the cache');

    relay.stall();
    await direct.query("UPDATE items SET val = 'bypassed' WHERE id = 1");
    const committedAt = performance.now();
    // The drainer cannot pass any more: once its last complete pass is older than the bound, the
    // proxy stops answering from the cache.
    const closed = await waitFor('the gate', () => performance.now() - proxy.bypass.coveredAt > BOUND_MS);
    const behind = proxy.metrics.passThrough['drainer-behind'];
    // The read goes upstream (held by the stalled relay); resuming delivers PostgreSQL's answer.
    const answer = read();
    const early = await Promise.race([answer, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200))]);
    assert.notEqual(early, 'v1', `a read ${Math.round(performance.now() - committedAt)} ms after the bypass write returned the old row from the cache (the drainer hangs)`);
    relay.resume();
    assert.equal(await answer, 'bypassed');
    assert.ok(closed, 'the drainer kept counting as current while its connection hung');
    assert.equal(proxy.metrics.passThrough['drainer-behind'], behind + 1, 'the read was passed through as drainer-behind');

    // The drainer recovers (a new connection, or its held query completes): the row is cached again.
    const hitsAfter = proxy.metrics.hits;
    assert.ok(await waitFor('hits again', async () => (await read()) === 'bypassed' && proxy.metrics.hits > hitsAfter), 'the cache never served again after the drainer recovered');
  });
});
