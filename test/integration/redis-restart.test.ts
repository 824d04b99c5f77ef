// A test-owned Redis killed, paused and restarted under a running engine: no request hangs past
// its deadline, reads fall back to the store, writes follow the failure policy, and once Redis is
// back (empty, or reloaded from its own disk) no stale value is served after the journal replay.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { CacheUnavailableError } from '../../src/errors.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { needRedisServer, startRedisServer, untilUptime, type RedisServer } from '../helpers/redis-server.js';
import { type WriteThrough, createWriteThrough } from '../../src/compose/write-through.js';

const COMMAND_TIMEOUT_MS = 300;
/** A call may take its deadline plus scheduling slack, never more. */
const BOUND_MS = COMMAND_TIMEOUT_MS * 3;

async function timed<T>(work: Promise<T>): Promise<{ ms: number; result?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const result = await work;
    return { ms: performance.now() - start, result };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

/** The client reconnects with backoff, then the restart's quarantine (5 s) passes: wait (bounded) until it answers again. */
async function reconnected(cache: RedisCacheAdapter): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await cache.ping();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

for (const persistence of ['none', 'appendonly'] as const) {
  describe(`Redis restarted under load (persistence: ${persistence})`, { skip: needRedisServer().skip }, () => {
    let redis: RedisServer;
    let dir: string;
    let store: SqliteStore;
    let cache: RedisCacheAdapter;
    let pragmatic: WriteThrough<string>;
    let strict: WriteThrough<string>;

    before(async () => {
      redis = await startRedisServer(persistence === 'appendonly' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : []);
      await untilUptime(redis); // past the first-use quarantine of a freshly started server
      dir = mkdtempSync(join(tmpdir(), 'lockstep-restart-'));
      store = createSqliteStore({ path: join(dir, 'store.db') });
      cache = createRedisCache({ url: redis.url, commandTimeout: COMMAND_TIMEOUT_MS, keyPrefix: 'restart:' });
      await cache.connect();
      const common = { store, cache, leaseTtl: '3s', journal: { pollInterval: '1h' }, metrics: false } as const;
      pragmatic = createWriteThrough<string>({ ...common, namespace: 'p' });
      strict = createWriteThrough<string>({ ...common, namespace: 's', failurePolicy: 'strict', journal: false });
    });
    after(async () => {
      await pragmatic.close();
      await strict.close();
      await cache.close();
      await store.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('while Redis is down, every call ends within its deadline and follows the policy', async () => {
      await pragmatic.write('k', 'before');
      await strict.write('k', 'before');
      assert.equal((await pragmatic.readEntry('k')).source, 'hit');
      await redis.kill();

      const write = await timed(pragmatic.write('k', 'during'));
      assert.ok(write.ms < BOUND_MS, `pragmatic write took ${write.ms} ms`);
      assert.equal(write.error, undefined, 'pragmatic acknowledges: the store has it, the journal repairs the cache');
      const read = await timed(pragmatic.readEntry('k'));
      assert.ok(read.ms < BOUND_MS, `read took ${read.ms} ms`);
      assert.deepEqual(read.result, { found: true, value: 'during', version: 2, source: 'store-fallback' });

      const refused = await timed(strict.write('k', 'during'));
      assert.ok(refused.ms < BOUND_MS, `strict write took ${refused.ms} ms`);
      assert.ok(refused.error instanceof CacheUnavailableError);
      assert.equal((await store.read('s', 'k'))?.payload, '"before"', 'strict wrote nothing');
    });

    it('a paused (unresponsive, connected) Redis does not hang callers either', async () => {
      await redis.restart();
      await reconnected(cache);
      await pragmatic.drainJournal();
      redis.pause();
      try {
        const read = await timed(pragmatic.readEntry('k'));
        assert.ok(read.ms < BOUND_MS, `read took ${read.ms} ms`);
        assert.equal(read.result?.value, 'during');
        const write = await timed(pragmatic.write('k', 'paused'));
        assert.ok(write.ms < BOUND_MS * 2, `write took ${write.ms} ms`);
      } finally {
        redis.resume();
      }
    });

    it('after the restart and the journal replay, no stale value is served', async () => {
      await redis.kill();
      await pragmatic.write('k', 'while down'); // journaled: the cache may come back with an older value
      await redis.restart();
      await reconnected(cache);
      await pragmatic.drainJournal();
      assert.equal(await pragmatic.read('k'), 'while down');
      assert.equal((await pragmatic.inspect('k')).state, 'C');
      await pragmatic.write('k', 'after');
      assert.equal(await pragmatic.read('k'), 'after');
    });
  });
}
