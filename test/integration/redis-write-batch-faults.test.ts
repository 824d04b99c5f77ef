// Faults against the Redis adapter's coalesced write calls (src/cache/redis-write-batch.ts, the
// writeBatch script): a batch must do under a fault what its calls would have done each alone, on a
// redis-server of the test's own that the test fills past maxmemory, blocks with a long script, or
// cuts off mid-batch.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createClient, type RedisClientType } from 'redis';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { SCRIPTS } from '../../src/cache/redis-scripts.js';
import { CacheError } from '../../src/errors.js';
import { stringEntry } from '../conformance/cache-adapter.suite.js';
import { needRedisServer, type RedisServer, startRedisServer, untilUptime } from '../helpers/redis-server.js';

const installed = needRedisServer();
const LEASE = 10_000;
const TTL = 600_000;
const ACKNOWLEDGED = { acknowledged: true } as const;

describe('Redis cache: write batches under faults', { skip: installed.skip }, () => {
  let server: RedisServer;
  let admin: RedisClientType;

  before(async () => {
    server = await startRedisServer(['--maxmemory-policy', 'noeviction']);
    await untilUptime(server, 1); // older than the quarantine below: a first use, not a lost dataset
    admin = createClient({ url: server.url });
    await admin.connect();
  });
  after(async () => {
    await admin?.close().catch(() => undefined);
    await server?.stop();
  });

  async function open(prefix: string): Promise<RedisCacheAdapter> {
    for (const script of Object.values(SCRIPTS)) await admin.sendCommand(['SCRIPT', 'LOAD', script.source]);
    const cache = createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: '500ms', commandTimeout: '2s' });
    await cache.connect();
    return cache;
  }

  it('past maxmemory (noeviction) a batch publishes nothing its calls alone could not: a DEL early in the run does not open the door for the rest', async () => {
    const prefix = `oom-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    const filler = `${prefix}#filler`;
    try {
      // A write whose completion only removes its record (dirty: a newer version was fenced in), so
      // its transition's one write is a DEL, which Redis lets through under OOM; and five leases whose
      // completions publish 100 KB each.
      await cache.beginWrite('cleared', 'w-cleared', LEASE);
      await cache.invalidateOlder('cleared', 1_000);
      const keys = ['p1', 'p2', 'p3', 'p4', 'p5'];
      for (const key of keys) await cache.beginWrite(key, `w-${key}`, LEASE);
      // Past maxmemory now: a write alone is refused (the engine then follows its failure policy).
      await admin.set(filler, 'x'.repeat(2 * 1024 * 1024));
      await admin.sendCommand(['CONFIG', 'SET', 'maxmemory', '1mb']);
      const payload = 'y'.repeat(100 * 1024);
      await assert.rejects(cache.completeWrite('p5', 'w-p5', stringEntry(5, payload), TTL), /OOM/, 'a completion alone is refused');
      const usedBefore = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
      // Acknowledged completions (after-commit) of one tick: one writeBatch run, the DEL first.
      const outcomes = await Promise.allSettled([
        cache.completeWrite('cleared', 'w-cleared', stringEntry(2, 'cleared'), TTL, ACKNOWLEDGED),
        ...keys.slice(0, 4).map((key, i) => cache.completeWrite(key, `w-${key}`, stringEntry(i + 1, payload), TTL, ACKNOWLEDGED)),
      ]);
      const published = keys.slice(0, 4).filter((_, i) => outcomes[i + 1]!.status === 'fulfilled');
      const usedAfter = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
      assert.deepEqual(published, [], `under OOM the batch published ${published.join(', ')} (used_memory ${usedBefore} -> ${usedAfter}, maxmemory 1 MiB)`);
      for (const outcome of outcomes.slice(1)) {
        const reason = (outcome as PromiseRejectedResult).reason as unknown;
        assert.ok(reason instanceof CacheError && /OOM/.test(reason.message), String(reason));
      }
      for (const key of keys) assert.equal((await cache.peek(key))?.kind, 'write', `${key} keeps its lease: readers bypass it until it expires dirty`);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'maxmemory', '0']);
      await admin.del(filler);
      await cache.close();
    }
  });

  it("the connection drops after the run executed, before its reply arrives: every call of the run fails (its outcome unknown to the caller), none hangs, none reports the other's reply", async () => {
    const prefix = `drop-${randomUUID().slice(0, 8)}:`;
    // A relay that forwards requests at once and, once told, swallows Redis's replies and then cuts
    // the client's connection: the run executes, its reply is lost.
    let swallow = false;
    const clients = new Set<Socket>();
    const relay = createServer((client) => {
      clients.add(client);
      const upstream = new Socket();
      upstream.connect(server.port, '127.0.0.1');
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => {
        if (!swallow) client.write(chunk);
      });
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        clients.delete(client);
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const url = `redis://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    for (const script of Object.values(SCRIPTS)) await admin.sendCommand(['SCRIPT', 'LOAD', script.source]);
    const cache = createRedisCache({ url, keyPrefix: prefix, restartQuarantine: '500ms', commandTimeout: '2s', maxReconnectDelay: '50ms' });
    try {
      await cache.connect();
      await cache.beginWrite('a', 'w-a', LEASE);
      swallow = true;
      const started = performance.now();
      const first = cache.beginWrite('first', 'w-first', LEASE); // alone; the two below share one run
      const calls = [
        cache.completeWrite('a', 'w-a', stringEntry(1, 'one'), TTL, ACKNOWLEDGED),
        cache.beginWrite('b', 'w-b', LEASE),
      ];
      // Both runs reached Redis (their effects are there), and their replies were swallowed.
      for (;;) {
        if ((await admin.get(`${prefix}a`))?.startsWith('v1:') && (await admin.exists(`${prefix}b`)) === 1) break;
        assert.ok(performance.now() - started < 5_000, 'the run reached Redis');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      for (const client of clients) client.destroy();
      const results = await Promise.allSettled([first, ...calls]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
      for (const result of results) assert.ok((result as PromiseRejectedResult).reason instanceof CacheError, String((result as PromiseRejectedResult).reason));
      assert.ok(performance.now() - started < 2_500, 'within the deadline');
      // What Redis holds is what the run did: the caller, told nothing, follows its failure policy
      // (a completion's lease expires dirty; a lease it thinks it lacks is fenced by the journal).
      assert.equal(await admin.get(`${prefix}a`), 'v1:0:one');
      assert.match(String(await admin.get(`${prefix}b`)), /^w\{"t":\{"w-b":/, 'the lease the run took is there, and expires if nobody completes it');
    } finally {
      await cache.close();
      for (const client of clients) client.destroy();
      await new Promise((resolve) => relay.close(resolve));
    }
  });
});
