// The near cache's invalidation connection lost without a trace (a host that died, an address moved:
// no FIN, no RST ever comes). The L1 stops trusting its copies (no heartbeat comes back, so the bound
// is kept by age alone), but node-redis saw nothing wrong and waited on that connection until the
// kernel gave up (about 15 minutes): the feed was not replaced and the near cache served every read
// from Redis meanwhile. (A connection that is closed, e.g. by CLIENT KILL, was and is reconnected:
// test/integration/near-cache.test.ts.) The feed now probes its connection and replaces a silent one.
// Real parts: a redis-server of the test's own, a relay in front of it that loses the feed's
// connection (it stays open and delivers nothing) while new connections go through.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NearCache } from '../../src/cache/near.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';
import { until } from '../helpers/until.js';

describe('near cache: an invalidation connection lost without a trace', () => {
  const { skip } = needRedisServer();
  let redis: RedisServer;
  let relay: StallRelay;
  before(async () => {
    if (skip) return;
    redis = await startRedisServer();
    relay = await startStallRelay(redis.url);
  });
  after(async () => {
    await relay?.close();
    await redis?.stop();
  });

  it('is replaced: the feed tracks again on a new connection and heartbeats come back', { skip, timeout: 60_000 }, async () => {
    const keyPrefix = `near-silent-${randomUUID().slice(0, 8)}:`;
    const errors: string[] = [];
    const tracking = createTrackingFeed({ url: relay.urlFor(redis.url), keyPrefix, silentAfterMs: 1_000, onError: (e) => errors.push(String(e)) });
    const near = new NearCache({ redis: createRedisCache({ url: redis.url, keyPrefix }), feed: tracking, maxStaleness: 200, maxEntries: 100 });
    try {
      await near.start();
      await until('the feed live, heartbeats coming back', async () => near.nearStats().live && near.nearStats().heartbeats > 2);
      const id = await tracking.clientId();
      relay.abandon();
      const beats = near.nearStats().heartbeats;
      await until(
        'heartbeats come back after the connection was lost',
        async () => near.nearStats().live && near.nearStats().heartbeats > beats + 2,
        20_000,
      );
      assert.notEqual(await tracking.clientId(), id, 'on a new connection');
      assert.ok(errors.some((e) => /answered no PING/.test(e)), `the silent connection was reported: ${JSON.stringify(errors)}`);
    } finally {
      await near.close();
    }
  });
});
