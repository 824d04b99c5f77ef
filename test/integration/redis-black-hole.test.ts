// The Redis cache's connection is lost without a trace (the server's host died, or a failover moved
// its address: no FIN or RST ever comes) while a new connection would reach a working Redis. Every
// call then timed out (E_CACHE_TIMEOUT) and the adapter never replaced the connection: node-redis
// reconnects only after a socket error, and a black-holed socket gives none until the kernel's
// retransmissions give up (tcp_retries2: about 15 minutes on Linux). Meanwhile reads used the
// store, pragmatic writes were acknowledged with repair rows that could not be replayed, strict
// writes failed. Now the adapter drops its own connection after calls have been expiring for
// 4 command timeouts (at least 2 s) with none answered, and connects again. What counts as an
// answer (found by review): a reply, late ones included (a slow Redis is alive: its connection is
// kept), and Redis' own error replies; not the client's refusals (a full queue failed every call at
// once, which counted as answered, and the black-holed connection was never replaced).
import assert from 'node:assert/strict';
import net from 'node:net';
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

  /** Polls a read until one is answered, for at most RECOVERY_MS; the last error otherwise. */
  async function answeredAgain(cache: { peek(key: string): Promise<unknown> }): Promise<{ answered: boolean; last: unknown }> {
    const started = performance.now();
    let last: unknown;
    while (performance.now() - started < RECOVERY_MS) {
      if (await cache.peek('x').then(() => true, (error: unknown) => ((last = error), false))) return { answered: true, last };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { answered: false, last };
  }

  it('with its command queue full (every call refused at once by the client): still replaced', async () => {
    const fresh = await startStallRelay(REDIS_URL);
    const cache = createRedisCache({ url: fresh.urlFor(REDIS_URL), keyPrefix: 'black-hole-queue:', commandTimeout: '300ms', maxQueuedCommands: 20 });
    try {
      await cache.connect();
      assert.equal(await cache.peek('x'), undefined);
      fresh.stall();
      // A burst while black-holed fills the client's queue: 20 commands never answered, the rest refused.
      const burst = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => cache.peek(`k${i}`)));
      assert.ok(burst.some((r) => r.status === 'rejected' && /queue is full/i.test(String((r.reason as Error)?.cause ?? r.reason))) || burst.every((r) => r.status === 'rejected'), 'the burst was refused');
      fresh.abandon();
      const { answered, last } = await answeredAgain(cache);
      assert.ok(answered, `no call answered within ${RECOVERY_MS} ms (${fresh.connections} connection(s)); last error: ${(last as Error)?.message}`);
    } finally {
      await cache.close();
      await fresh.close();
    }
  });

  it('a Redis that answers every call late (slow, not silent) keeps its connection', async () => {
    const target = new URL(REDIS_URL);
    let connections = 0;
    let delayMs = 0;
    const server = net.createServer((client) => {
      connections++;
      const upstream = net.connect(Number(target.port || 6379), target.hostname);
      client.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => (delayMs === 0 ? client.write(chunk) : setTimeout(() => client.destroyed || client.write(chunk), delayMs)));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('error', () => undefined);
      upstream.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const warnings: string[] = [];
    const port = (server.address() as net.AddressInfo).port;
    const cache = createRedisCache({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'slow-redis:', commandTimeout: '200ms', onWarning: (message) => warnings.push(message) });
    try {
      await cache.connect();
      delayMs = 300; // every answer arrives, 100 ms past its deadline
      let timedOut = 0;
      // Four windows of the 2 s silence bound: a connection judged silent would be replaced in each.
      for (const end = performance.now() + 8_000; performance.now() < end; ) {
        const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => cache.peek(`k${i}`)));
        timedOut += settled.filter((r) => r.status === 'rejected').length;
      }
      assert.ok(timedOut > 0, 'the calls timed out (the answers came late)');
      assert.equal(connections, 1, `connections: ${connections}; warnings: ${warnings.length}: ${warnings[0]}`);
    } finally {
      await cache.close();
      server.close();
    }
  });
});
