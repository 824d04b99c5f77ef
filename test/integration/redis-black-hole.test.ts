// The Redis cache's connection is lost without a trace (the server's host died, or a failover moved
// its address: no FIN or RST ever comes) while a new connection would reach a working Redis. Every
// call then timed out (E_CACHE_TIMEOUT) and the adapter never replaced the connection: node-redis
// reconnects only after a socket error, and a black-holed socket gives none until the kernel's
// retransmissions give up (tcp_retries2: about 15 minutes on Linux). Meanwhile reads used the
// store, pragmatic writes were acknowledged with repair rows that could not be replayed, strict
// writes failed. Now the adapter drops its own connection after calls have been expiring for
// 4 command timeouts (at least 2 s) with none answered, and connects again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRedisCache } from '../../src/cache/redis.js';
import { needService, REDIS_URL } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';

const service = await needService('Redis', REDIS_URL);
const RECOVERY_MS = 15_000;

describe('a Redis cache whose connection is lost without a trace', { skip: service.skip, timeout: 60_000 }, () => {
  let relay: StallRelay;
  before(async () => {
    relay = await startStallRelay(REDIS_URL);
  });
  after(async () => {
    await relay?.close();
  });

  it('answers again through a new connection', async () => {
    const cache = createRedisCache({ url: relay.urlFor(REDIS_URL), keyPrefix: 'black-hole:', commandTimeout: '300ms' });
    try {
      await cache.connect();
      assert.equal(await cache.peek('x'), undefined);
      relay.stall();
      await assert.rejects(cache.peek('x'), { code: 'E_CACHE_TIMEOUT' });
      relay.abandon(); // the old connection is gone for good; a new one would work
      const started = performance.now();
      let answered = false;
      while (!answered && performance.now() - started < RECOVERY_MS) {
        answered = await cache.peek('x').then(
          () => true,
          () => false,
        );
        if (!answered) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(answered, `no call answered within ${RECOVERY_MS} ms of the failover (${relay.connections} connection(s) to the relay)`);
    } finally {
      await cache.close();
    }
  });
});
