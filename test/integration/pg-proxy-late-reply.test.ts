// A miss's answer that PostgreSQL sent before a write committed, held by the network past the fill
// lease and delivered after the write was acknowledged: the late reader may get the old row (its
// read was concurrent with the write), but the proxy must not cache it. A relay between the proxy
// and PostgreSQL holds back the replies of the reader's upstream connection only; the writer, the
// drainer and a later reader go through other connections.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const FILL_LEASE_MS = 300;

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('pg-proxy: a miss whose answer arrives after a newer write was acknowledged', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let relay: StallRelay;
  let proxy: PgProxy & { url: string };
  const clients: pg.Client[] = [];
  const open = async () => {
    const c = new pg.Client({ connectionString: proxy.url });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  before(async () => {
    db = await createProxyDatabase('latereply', 3);
    relay = await startStallRelay(db.url);
    proxy = await startTestProxy({ ...db, url: relay.urlFor(db.url) }, { fillLeaseMs: FILL_LEASE_MS });
  });
  after(async () => {
    relay?.resume();
    for (const c of clients) await c.end().catch(() => undefined);
    await proxy?.close(1000);
    await relay?.close();
    await db?.drop();
  });

  it('does not cache the old row', async () => {
    const reader = await open(); // its upstream connection is the relay's newest
    const held = relay.holdRepliesOfNewest();
    const misses = proxy.metrics.misses;
    const late = reader.query('SELECT val FROM items WHERE id = $1', [1]);
    // PostgreSQL answered the miss (v1); the answer is held.
    await waitFor('the miss to be answered and held', () => held() > 0 && proxy.metrics.misses > misses);

    const writer = await open();
    await writer.query("UPDATE items SET val = 'v2' WHERE id = 1");
    await new Promise((resolve) => setTimeout(resolve, 2 * FILL_LEASE_MS));
    relay.resume();
    const rejected = proxy.metrics.fillsRejected;
    const answer = (await late).rows[0]?.val;
    // Its snapshot was taken before the write: it answers the old row, and its fill is refused.
    assert.equal(answer, 'v1', 'the late reader read in its own snapshot, from before the write');
    await waitFor('the late fill to be refused', () => proxy.metrics.fillsRejected > rejected);

    // Every read that begins now must see v2, from PostgreSQL or from the cache, never the late v1.
    const after = await open();
    for (let i = 0; i < 20; i++) {
      const { rows } = await after.query('SELECT val FROM items WHERE id = $1', [1]);
      assert.equal(rows[0]?.val, 'v2', `read ${i} after the write was acknowledged (hits ${proxy.metrics.hits})`);
    }
    assert.ok(proxy.metrics.hits > 0, 'the row was cached again (the reads exercised the cache)');
  });
});
