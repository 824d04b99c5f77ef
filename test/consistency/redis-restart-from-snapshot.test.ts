// The race: Redis with persistence (its default configuration saves RDB snapshots) restarts from a
// snapshot taken before an acknowledged write was published. The write held its lease and
// published normally, so no journal row stands for it; the restarted Redis serves the older value
// (with its remaining TTL) and nothing replays it away. A failover to an asynchronous replica that
// had not received the publish is the same rollback. Marked `todo`: found by this review, not fixed
// (see the report: the Redis adapter would have to detect a dataset it did not write — a restart or
// a promotion, e.g. a marker key holding the run_id it was written under — and flush it).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { needRedisServer, startRedisServer } from '../helpers/redis-server.js';

describe('Redis restarted from a snapshot older than an acknowledged write', () => {
  const { skip } = needRedisServer();
  it('a read after the restart does not serve the value the snapshot held', { skip, todo: 'hole found in review: a rolled-back Redis dataset is trusted' }, async () => {
    const redis = await startRedisServer(['--save', '3600 1']);
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-rollback-'));
    const store = createSqliteStore({ path: join(dir, 'store.db') });
    const prefix = `rollback:${randomUUID().slice(0, 8)}:`;
    const open = async () => {
      const cache = createRedisCache({ url: redis.url, keyPrefix: prefix });
      await cache.connect();
      return { cache, engine: createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false }) };
    };
    let current = await open();
    try {
      await current.engine.write('k', 'v1');
      assert.equal(await current.engine.read('k'), 'v1'); // cached
      await redis.cli('SAVE'); // a periodic RDB snapshot
      await current.engine.write('k', 'v2'); // leased, published: acknowledged, no journal row
      assert.equal(await current.engine.read('k'), 'v2');
      await redis.kill();
      await current.engine.close();
      await current.cache.close();
      await redis.restart(); // loads the snapshot: v1 is back, with its TTL
      current = await open();
      assert.equal((await store.read('ns', 'k'))?.version, 2);
      await current.engine.drainJournal(); // the start's replay is over: reads use the cache again
      assert.equal(await current.engine.read('k'), 'v2', 'the acknowledged v2, not the snapshot\'s v1');
    } finally {
      await current.engine.close();
      await current.cache.close();
      await store.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
