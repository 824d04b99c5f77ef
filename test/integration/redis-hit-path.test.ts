// The engine's read over the Redis adapter's hit path (CacheAdapter.getThen): an untimed read's
// handling of the answer is kept per key and shared by every read of that key, a timed one (a `read`
// listener) is made per read. What must hold: many reads of many keys in flight at once, hits and
// misses mixed (a record deleted behind the engine's back), each answer their own key's value, and
// a hit read while someone listens is reported with its key and source.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { type WriteThrough, createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { StoreAdapter } from '../../src/types.js';
import { needService, REDIS_URL } from '../helpers/services.js';

const shared = await needService('Redis', REDIS_URL);
const prefix = `lockstep-test:${randomUUID().slice(0, 8)}:`;
const KEYS = Array.from({ length: 20 }, (_, i) => `k${i}`);
const valueOf = (key: string) => ({ key, n: key.length });

describe('engine reads over the Redis hit path', { skip: shared.skip }, () => {
  let dir = '';
  let store: StoreAdapter;
  let cache: RedisCacheAdapter;
  let engine: WriteThrough<{ key: string; n: number }>;
  const raw = createClient({ url: REDIS_URL });
  raw.on('error', () => undefined);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-hit-path-'));
    store = createSqliteStore({ path: join(dir, 'store.db') });
    cache = createRedisCache({ url: REDIS_URL, keyPrefix: prefix });
    await cache.connect();
    await raw.connect();
    engine = createWriteThrough({ store, cache, namespace: 'hits' });
    for (const key of KEYS) await engine.write(key, valueOf(key));
  });

  after(async () => {
    await engine?.close();
    await cache?.close();
    await store?.close();
    for await (const found of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (found.length > 0) await raw.unlink(found);
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads of many keys in flight at once, hits and misses mixed, each answer their own key', async () => {
    for (let round = 0; round < 3; round++) {
      // A third of the keys lose their record behind the engine's back: those reads miss and fill from the store.
      const dropped = KEYS.filter((_, i) => i % 3 === round);
      for (const key of dropped) await raw.del(`${prefix}hits:${key}`);
      const before = { ...engine.counters };
      const order = Array.from({ length: 10 }, () => KEYS).flat();
      const answers = await Promise.all(order.map((key) => engine.read(key)));
      answers.forEach((answer, i) => assert.deepEqual(answer, valueOf(order[i]!), `read ${i} of ${order[i]}`));
      assert.ok(engine.counters.cacheHits - before.cacheHits > 0, 'some reads were hits');
      assert.ok(engine.counters.cacheMisses - before.cacheMisses > 0, 'some reads missed');
    }
  });

  it('a hit read while a `read` listener is on is reported with its key and source; off again, reads answer as before', async () => {
    for (const key of KEYS) assert.deepEqual(await engine.read(key), valueOf(key)); // untimed first: handlers kept per key
    const seen: Array<{ key: string; source: string | undefined; ms: number }> = [];
    const listener = (event: { key: string; source: string | undefined; ms: number }) => void seen.push(event);
    engine.on('read', listener);
    try {
      const answers = await Promise.all(KEYS.map((key) => engine.read(key)));
      answers.forEach((answer, i) => assert.deepEqual(answer, valueOf(KEYS[i]!)));
    } finally {
      engine.off('read', listener);
    }
    assert.deepEqual(
      seen.map((event) => `${event.key} ${event.source}`).sort(),
      KEYS.map((key) => `${key} hit`).sort(),
    );
    for (const event of seen) assert.ok(event.ms >= 0 && event.ms < 60_000, `ms ${event.ms}`);
    assert.deepEqual(await engine.read(KEYS[0]!), valueOf(KEYS[0]!));
    assert.equal(seen.length, KEYS.length, 'no report once the listener is off');
  });
});
