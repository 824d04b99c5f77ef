// The near cache against a real redis-server (owned, on a spare port): another instance's write
// reaches the L1 through Redis's tracking, a copy ages out at the bound, the L1 keeps its entry and
// byte bounds, a killed invalidation connection stops the L1 and its reconnect starts it empty.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { NearCache } from '../../src/cache/near.js';
import { createNearCache } from '../../src/cache/near-redis.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createManualClock } from '../../src/clock.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { CacheEntry } from '../../src/types.js';
import { createClient } from 'redis';
import { FaultyFeed } from '../helpers/faulty-feed.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

const entry = (version: number, payload: string): CacheEntry => ({ version, payload, tombstone: false, sizeBytes: payload.length });

describe('near cache over a real Redis', () => {
  const { skip } = needRedisServer();
  let redis: RedisServer;
  let raw: ReturnType<typeof createClient>;
  before(async () => {
    if (skip) return;
    redis = await startRedisServer();
    raw = createClient({ url: redis.url });
    await raw.connect();
  });
  after(async () => {
    await raw?.close();
    await redis?.stop();
  });

  /** A near cache on a manual clock, so only invalidations (not age) can drop a copy unless the test advances it. */
  async function open(keyPrefix: string, options: { maxEntries?: number; maxBytes?: number; boundMs?: number; heartbeat?: boolean } = {}) {
    const clock = createManualClock(1_000);
    const tracking = createTrackingFeed({ url: redis.url, keyPrefix });
    const feed = new FaultyFeed(tracking);
    const near = new NearCache({
      redis: createRedisCache({ url: redis.url, keyPrefix }),
      feed,
      maxStaleness: options.boundMs ?? 3_600_000,
      ...(options.maxBytes === undefined ? { maxEntries: options.maxEntries ?? 100 } : { maxBytes: options.maxBytes }),
      now: clock.now,
      heartbeat: options.heartbeat ?? true,
    });
    await near.start();
    await until('the feed live', () => near.nearStats().live);
    return { near, clock, tracking, feed, keyPrefix };
  }

  let probes = 0;
  /** Waits until every invalidation Redis sent so far reached the L1 (the feed delivers in order). */
  async function settle(opened: { feed: FaultyFeed; keyPrefix: string }): Promise<void> {
    const probe = `${opened.keyPrefix}#probe-${++probes}`;
    await raw.set(probe, '1');
    await until('the probe invalidation', () => opened.feed.lastKey === probe);
  }

  /** Puts a value in Redis through the protocol (fill lease, fill) and reads it into the L1. */
  async function seed(opened: { near: NearCache; feed: FaultyFeed; keyPrefix: string }, key: string, version: number, payload: string): Promise<void> {
    const { near } = opened;
    const miss = await near.get(key, 1_000);
    assert.equal(miss.kind, 'miss');
    assert.ok(miss.kind === 'miss' && miss.token !== undefined);
    assert.equal(await near.fill(key, miss.token, entry(version, payload), 60_000), true);
    await settle(opened);
    assert.equal((await near.get(key, 1_000)).kind, 'value');
  }

  it('a write through another instance reaches the L1 through Redis tracking (not by age: the bound here is an hour)', { skip }, async () => {
    const keyPrefix = `near-it-${randomUUID().slice(0, 8)}:`;
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-near-it-'));
    const a = await open(keyPrefix);
    const b = await open(keyPrefix);
    const storeA = createSqliteStore({ path: join(dir, 's.db') });
    const storeB = createSqliteStore({ path: join(dir, 's.db') });
    const engineA = createWriteThrough<string>({ store: storeA, cache: a.near, namespace: 'n', metrics: false, journal: false });
    const engineB = createWriteThrough<string>({ store: storeB, cache: b.near, namespace: 'n', metrics: false, journal: false });
    try {
      await engineA.write('k', 'v1');
      await until('A serves v1 from its L1', async () => (await engineA.readEntry('k')).value === 'v1' && a.near.nearStats().hits > 0);
      const hits = a.near.nearStats().hits;
      assert.equal((await engineA.readEntry('k')).value, 'v1');
      assert.equal(a.near.nearStats().hits, hits + 1, 'a hot read is an L1 hit');
      await engineB.write('k', 'v2');
      await until('A sees B\'s write', async () => (await engineA.readEntry('k')).value === 'v2');
      assert.equal((await engineB.readEntry('k')).value, 'v2', 'B reads its own write');
    } finally {
      await engineA.close();
      await engineB.close();
      await a.near.close();
      await b.near.close();
      await storeA.close();
      await storeB.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a copy is not served once its Redis get was sent maxStaleness ago, whatever the feed says', { skip }, async () => {
    const opened = await open(`near-age-${randomUUID().slice(0, 8)}:`, { boundMs: 50, heartbeat: false });
    const { near, clock } = opened;
    try {
      await seed(opened, 'k', 1, 'v1');
      const { hits, misses } = near.nearStats();
      assert.equal((await near.get('k', 1_000)).kind, 'value');
      assert.equal(near.nearStats().hits, hits + 1);
      clock.advance(49);
      assert.equal((await near.get('k', 1_000)).kind, 'value');
      assert.equal(near.nearStats().hits, hits + 2, 'still within the bound');
      clock.advance(1);
      assert.equal((await near.get('k', 1_000)).kind, 'value');
      assert.equal(near.nearStats().misses, misses + 1, 'at the bound the read goes to Redis');
    } finally {
      await near.close();
    }
  });

  it('the L1 keeps its entry bound and its byte bound', { skip }, async () => {
    const byEntries = await open(`near-n-${randomUUID().slice(0, 8)}:`, { maxEntries: 3 });
    const byBytes = await open(`near-b-${randomUUID().slice(0, 8)}:`, { maxBytes: 1_000 });
    try {
      for (let i = 0; i < 6; i++) await seed(byEntries, `k${i}`, 1, 'x');
      assert.equal(byEntries.near.nearStats().entries, 3);
      const big = 'y'.repeat(300);
      for (let i = 0; i < 6; i++) await seed(byBytes, `k${i}`, 1, big);
      const stats = byBytes.near.nearStats();
      assert.ok(stats.bytes <= 1_000 && stats.entries === 2, `bytes ${stats.bytes}, entries ${stats.entries}`);
    } finally {
      await byEntries.near.close();
      await byBytes.near.close();
    }
  });

  it('a killed invalidation connection stops the L1; its reconnect starts it empty', { skip }, async () => {
    const opened = await open(`near-kill-${randomUUID().slice(0, 8)}:`);
    const { near, tracking } = opened;
    try {
      await seed(opened, 'k', 1, 'v1');
      assert.equal(near.nearStats().entries, 1);
      const id = await tracking.clientId();
      assert.match(await redis.cli('CLIENT', 'LIST', 'ID', String(id)), /name=lockstep-near-invalidations .*resp=3/);
      await redis.cli('CLIENT', 'KILL', 'ID', String(id));
      await until('the feed reconnected with a new connection', async () => near.nearStats().live && (await tracking.clientId().catch(() => id)) !== id);
      assert.equal(near.nearStats().entries, 0, 'the reconnect flushed the L1');
      const { misses } = near.nearStats();
      assert.equal((await near.get('k', 1_000)).kind, 'value');
      assert.equal(near.nearStats().misses, misses + 1, 'the first read after it goes to Redis');
    } finally {
      await near.close();
    }
  });

  it('refuses an unbounded L1 and a missing bound with clear errors', { skip }, async () => {
    const redisCache = createRedisCache({ url: redis.url });
    const feed = createTrackingFeed({ url: redis.url, keyPrefix: 'x:' });
    assert.throws(() => new NearCache({ redis: redisCache, feed, maxStaleness: 50 }), InvalidOptionError);
    assert.throws(() => new NearCache({ redis: redisCache, feed, maxStaleness: 50, maxEntries: 0 }), /maxEntries must be a positive integer/);
    await assert.rejects(createNearCache({ url: redis.url, maxEntries: 10 } as never), /maxStaleness is required/);
    assert.throws(() => createTrackingFeed({ url: 'redis+cluster://127.0.0.1:1,127.0.0.1:2', keyPrefix: 'x:' }), /not a cluster/);
    await feed.close();
    await redisCache.close();
  });

  it('createNearCache connects and serves', { skip }, async () => {
    const near = await createNearCache({ url: redis.url, keyPrefix: `near-c-${randomUUID().slice(0, 8)}:`, maxStaleness: '50ms', maxEntries: 10 });
    try {
      await until('live', () => near.nearStats().live);
      assert.equal(near.maxStalenessMs, 50);
    } finally {
      await near.close();
    }
  });
});
