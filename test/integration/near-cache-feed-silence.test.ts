// What counts as silence on the near cache's invalidation connection (src/cache/near-tracking.ts),
// beyond a PING unanswered (test/integration/near-cache-silent-feed.test.ts):
// - a replacement connection that connects over TCP and goes silent in its handshake (HELLO, CLIENT
//   TRACKING) was never replaced: node-redis refuses a PING at once on a connection not ready, which
//   the probe took for an answer, and its connectTimeout covers the TCP connect only;
// - a Redis slow, not dead (a slow script stalls it 3.2 s) replaced the feed and flushed the L1 in every
//   process at once (the limit was a fixed 2 s): now an option, 10 s by default;
// - a stall of this process as long as the limit, with a PING's answer waiting unread in the socket,
//   replaced a healthy connection: the verdict is re-checked after the event loop read the sockets;
// - errors of a connection already replaced, or after close(), were told to onError.
// Real parts: a redis-server of the test's own, a relay in front of it for the feed's connection only.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NearCache } from '../../src/cache/near.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { InvalidOptionError } from '../../src/errors.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';
import { until } from '../helpers/until.js';

const OURS = /answered no PING|finished no handshake/;
const afterIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('near cache: silence on the invalidation connection', () => {
  const { skip } = needRedisServer();
  let redis: RedisServer;
  let relay: StallRelay;
  before(async () => {
    if (skip) return;
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.stop();
  });

  /** A near cache whose feed goes through a relay of its own; `silentAfterMs` undefined: the default. */
  async function open(silentAfterMs: number | undefined, heartbeat = true) {
    relay = await startStallRelay(redis.url);
    const keyPrefix = `near-silence-${randomUUID().slice(0, 8)}:`;
    const errors: string[] = [];
    const tracking = createTrackingFeed({
      url: relay.urlFor(redis.url),
      keyPrefix,
      ...(silentAfterMs === undefined ? {} : { silentAfterMs }),
      onError: (e) => errors.push(String(e)),
    });
    const near = new NearCache({ redis: createRedisCache({ url: redis.url, keyPrefix }), feed: tracking, maxStaleness: 200, maxEntries: 100, heartbeat });
    await near.start();
    await until('the feed live', async () => near.nearStats().live);
    let closed = false;
    return {
      tracking,
      near,
      errors,
      async close() {
        if (closed) return;
        closed = true;
        await near.close();
        await relay.close();
      },
    };
  }

  it('a replacement silent in its handshake is replaced too; only the live connection reports', { skip, timeout: 60_000 }, async () => {
    const f = await open(1_000);
    try {
      relay.stall(); // the connection in use goes silent, and so does every new one after its TCP connect
      await until('a connection silent in its handshake was replaced', async () => f.errors.some((e) => /finished no handshake/.test(e)), 20_000);
      assert.deepEqual(f.errors.filter((e) => !OURS.test(e)), [], 'no error of a connection already replaced');
      relay.resume();
      await until('the feed live again', async () => f.near.nearStats().live, 20_000);
      // Closed while a replacement is in its handshake: its connect() fails once closed, which is no
      // error to tell.
      relay.stall();
      const replaced = f.errors.length;
      await until('a replacement on its way', async () => f.errors.length > replaced, 20_000);
      await afterIo();
      await afterIo(); // the relay has seen the replaced connection close
      await until('the replacement in its handshake (its HELLO held)', async () => relay.connections === 1 && relay.held > 0, 20_000);
      const reported = f.errors.length;
      await f.close();
      await afterIo();
      await afterIo();
      assert.deepEqual(f.errors.slice(reported), [], 'no error after close()');
    } finally {
      await f.close();
    }
  });

  it('a Redis stalled 3.2 s (a slow script) keeps its feed under the default limit', { skip, timeout: 60_000 }, async () => {
    const f = await open(undefined);
    try {
      const id = await f.tracking.clientId();
      relay.stall();
      await until('a PING held by the stall', async () => relay.held > 0);
      // The fault's length, not a wait for a condition: Redis answers nothing for 3.2 s.
      await new Promise((resolve) => setTimeout(resolve, 3_200));
      relay.resume();
      assert.equal(await f.tracking.clientId(), id, 'the same connection');
      assert.deepEqual(f.errors, [], 'not reported silent');
    } finally {
      await f.close();
    }
  });

  it('a stall of this process with a PING answered but unread keeps the connection', { skip, timeout: 60_000 }, async () => {
    const f = await open(1_000, false); // no heartbeats: the only replies on the feed's connection are PINGs'
    try {
      const id = await f.tracking.clientId();
      const held = relay.holdRepliesOfNewest();
      await until('a PING outstanding (its answer held)', async () => held() > 0);
      // Stall from the check phase, as a long task run from I/O does: the next turn of the event loop
      // runs its expired timers (the probe's deadline) before it reads the sockets. (A stall in the
      // timers phase would not show it: libuv's clock is read before the timers, so the deadline
      // would only expire after the next read of the sockets.)
      await afterIo();
      relay.resume(); // the answer is now in this process's socket, unread until the event loop turns
      const stallUntil = performance.now() + 1_300; // longer than the limit, counted from after the PING was sent
      while (performance.now() < stallUntil);
      await afterIo();
      await afterIo();
      assert.deepEqual(f.errors, [], 'not reported silent');
      assert.equal(await f.tracking.clientId(), id, 'the same connection');
    } finally {
      await f.close();
    }
  });

  it('the silence limit is validated', () => {
    for (const silentAfterMs of [0, 50, 1.5, 3_600_001, Number.NaN]) {
      assert.throws(() => createTrackingFeed({ keyPrefix: 'x:', silentAfterMs }), InvalidOptionError, String(silentAfterMs));
    }
  });
});
