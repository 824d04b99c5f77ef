// The race: a write holds its lease and its store write is in flight when Redis restarts without
// persistence (or the dataset guard flushes): the lease is gone. A reader on another instance gets a
// fill lease from the emptied cache and reads the store before the write commits; the writer then
// commits and dies before completeWrite. Without a quarantine the reader's fill of the older value
// is accepted and served until its TTL. The dataset guard (src/cache/redis-dataset.ts) answers no
// call for `restartQuarantine` (≥ leaseTtl) after a lost dataset, so the reader falls back to the
// store without filling, and once the quarantine is over every pre-loss write has committed or
// given up (the lease budget). The mutant `restart-quarantine-off` (npm run mutation) drops the
// quarantine: the first test fails then. docs/protocol.md, "The quarantine".
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createGate } from '../../src/chaos/faults.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { needRedisServer, startRedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

/** Short leases keep the test quick; the quarantine must be at least the lease (the adapter's rule). */
const LEASE = '4s';

interface Instance {
  readonly redis: RedisCacheAdapter;
  readonly engine: WriteThrough<string>;
  readonly warnings: string[];
}

function open(url: string, prefix: string, store: StoreAdapter, wrap: (cache: RedisCacheAdapter) => CacheAdapter = (cache) => cache): Instance {
  const warnings: string[] = [];
  const redis = createRedisCache({ url, keyPrefix: prefix, commandTimeout: '1s', restartQuarantine: LEASE, onWarning: (message) => warnings.push(message) });
  const engine = createWriteThrough<string>({ store, cache: wrap(redis), namespace: 'ns', metrics: false, leaseTtl: LEASE, journal: { pollInterval: '100ms' } });
  return { redis, engine, warnings };
}

/** The cache answers (no quarantine, connected), or says it is quarantined: either way it is past its reconnection. */
function answersOrQuarantined(cache: RedisCacheAdapter): Promise<'answers' | 'quarantined' | 'down'> {
  return cache.ping().then(
    () => 'answers' as const,
    (error: { code?: string }) => (error.code === 'E_CACHE_QUARANTINED' ? 'quarantined' : 'down'),
  );
}

async function world() {
  const server = await startRedisServer(['--save', '', '--appendonly', 'no']);
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-quarantine-'));
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  const prefix = `quarantine:${randomUUID().slice(0, 8)}:`;
  const cleanup = async () => {
    await store.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { server, store, prefix, cleanup };
}

describe('Redis restarted without persistence while a write is in flight', () => {
  const { skip } = needRedisServer();

  it('a reader on another instance cannot fill the pre-commit value of a write whose lease was lost and whose writer died', { skip }, async () => {
    const { server, store, prefix, cleanup } = await world();
    const writerStore = new ChaosStore(store);
    let writerCache: ChaosCache | undefined;
    const writer = open(server.url, prefix, writerStore, (cache) => (writerCache = new ChaosCache(cache)));
    const reader = open(server.url, prefix, store);
    try {
      // A fresh server (up for less than the quarantine, no marker) is itself quarantined: wait it out.
      await until('the fresh cache to answer', async () => (await answersOrQuarantined(writer.redis)) === 'answers');
      await writer.engine.write('k', 'v1');
      // (the journal's start replay, which failed during that quarantine, is retried by the poll)
      await until('v1 to be served from the cache to the reader', async () => (await reader.engine.readEntry('k')).source === 'hit');

      // v2's lease is taken, then its store write waits at the gate; completeWrite never returns (the writer "dies").
      const gate = createGate();
      writerStore.faults.next('write', { kind: 'pause', when: 'before', gate });
      writerCache!.faults.next('completeWrite', { kind: 'hang', when: 'before' });
      const abandoned = writer.engine.write('k', 'v2');
      abandoned.catch(() => undefined);
      await gate.reached;

      await server.restart(); // without persistence: the dataset, v2's lease included, is gone
      await until('the reader to reconnect', async () => (await answersOrQuarantined(reader.redis)) !== 'down');

      // The reader misses in the emptied cache and reads the store before v2 commits.
      const during = await reader.engine.readEntry('k');
      const stateDuring = await answersOrQuarantined(reader.redis);
      // An instance that connects now finds the marker already naming this process, and waits the quarantine out too.
      const late = createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: LEASE, onWarning: () => undefined });
      await late.connect(); // connected, though quarantined
      const lateState = await answersOrQuarantined(late);
      const lateStarted = late.stats().datasetQuarantines;
      await late.close();
      assert.equal(during.value, 'v1', 'v2 has not committed yet');
      // A pragmatic write meanwhile cannot lease: it is journaled and acknowledged (replayed once the cache answers).
      const journaledBefore = reader.engine.counters.journaledAcks;
      await reader.engine.write('other', 'during');

      gate.release(); // v2 commits; its writer never completes (hung completeWrite)
      await until('v2 to commit', async () => (await store.read('ns', 'k'))?.version === 2);

      // Once the quarantine is over, the cache answers again: what it serves is v2.
      let answered = 0;
      const values = new Set<string | undefined>();
      await until('reads answered by the cache', async () => {
        const entry = await reader.engine.readEntry('k');
        values.add(entry.value);
        if (entry.source !== 'store-fallback') answered++;
        return answered >= 5;
      });
      assert.deepEqual([...values], ['v2'], 'never the older v1 read before v2 committed');
      assert.deepEqual([lateState, lateStarted], ['quarantined', 0], 'a later instance honours the quarantine another one started');
      assert.equal(stateDuring, 'quarantined', 'the read ran within the quarantine (v2\'s store step was held less than LEASE)');
      assert.equal(during.source, 'store-fallback', 'a quarantined cache answered no call: the read went to the store, and nothing was filled');
      assert.equal(reader.engine.counters.journaledAcks, journaledBefore + 1, 'the write during the quarantine was journaled');
      assert.equal(await reader.engine.read('other'), 'during');
      await until('v2 to be a hit (filled after the quarantine)', async () => (await reader.engine.readEntry('k')).source === 'hit');
      assert.equal((await reader.engine.readEntry('k')).value, 'v2');

      const quarantines = (reader.redis.stats().datasetQuarantines ?? 0) + (writer.redis.stats().datasetQuarantines ?? 0);
      assert.equal(quarantines, 2, 'one quarantine per server process (the fresh start, the restart), whichever instance set it');
      assert.ok(reader.warnings.some((message) => /E_CACHE_QUARANTINED\) for \d+ ms more, until Redis server time/.test(message)), reader.warnings.join('\n'));
    } finally {
      await reader.engine.close();
      await reader.redis.close();
      await writer.redis.close(); // the writer's engine stays abandoned, as a dead process's would
      await cleanup();
    }
  });

  it('an engine refuses a lease longer than the cache\'s quarantine (it would outlive it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-quarantine-'));
    const store = createSqliteStore({ path: join(dir, 'store.db') });
    const cache = createRedisCache({ url: 'redis://127.0.0.1:1', restartQuarantine: '1s' }); // never connected
    try {
      assert.throws(
        () => createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, journal: false, leaseTtl: '2s' }),
        (error: { code?: string; message?: string }) => error.code === 'E_INVALID_OPTION' && /restartQuarantine \(1000 ms\) must be at least leaseTtl \(2000 ms\)/.test(error.message ?? ''),
      );
      const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, journal: false, leaseTtl: '1s' });
      await engine.close();
    } finally {
      await cache.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reconnection to the same server process (CLIENT KILL) starts no quarantine', { skip }, async () => {
    const { server, store, prefix, cleanup } = await world();
    const instance = open(server.url, prefix, store);
    try {
      await until('the fresh cache to answer', async () => (await answersOrQuarantined(instance.redis)) === 'answers');
      await instance.engine.write('k', 'v1');
      await until('v1 to be a hit', async () => (await instance.engine.readEntry('k')).source === 'hit');
      const before = instance.redis.stats().datasetQuarantines;
      const warnings = instance.warnings.length;

      const killed = Number(await server.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
      assert.ok(killed >= 1, 'the adapter\'s connection was killed');
      const seen = new Set<string>();
      await until('the adapter to reconnect', async () => {
        const state = await answersOrQuarantined(instance.redis);
        seen.add(state);
        return state === 'answers';
      });
      assert.ok(!seen.has('quarantined'), `no call was refused as quarantined (seen: ${[...seen].join(', ')})`);
      assert.equal((await instance.engine.readEntry('k')).source, 'hit', 'the dataset was kept');
      assert.equal(instance.redis.stats().datasetQuarantines, before);
      assert.equal(instance.warnings.length, warnings, instance.warnings.join('\n'));
    } finally {
      await instance.engine.close();
      await instance.redis.close();
      await cleanup();
    }
  });
});
