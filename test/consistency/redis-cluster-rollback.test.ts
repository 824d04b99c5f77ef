// The race, in a Redis Cluster: a failover to an asynchronous replica that missed an acknowledged
// publish, or a master restarted from a snapshot taken before it, brings back an older value for
// which no journal row exists (the write held its lease and published normally). The cluster's
// dataset guard runs inside every script (src/cache/redis-scripts.ts, CLUSTER_SCRIPTS): a slot whose
// incarnation key names another server process (run_id) or replication history (master_replid) is
// claimed under a fresh token, every record stamped with an older token is absent, and the slot is
// quarantined for one lease period. These tests play both against a real cluster started here, with
// an engine over SQLite. Mutants: `cluster-guard-off` (no incarnation check) and
// `cluster-stamp-ignored` (stale stamps served) each make them read the rolled-back v1.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { needRedisServer, startRedisClusterWithReplica, untilReplicated, type RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

interface Instance {
  readonly cache: RedisCacheAdapter;
  readonly engine: WriteThrough<string>;
}

async function open(rootNode: string, store: SqliteStore, prefix: string): Promise<Instance> {
  // A lost slot is quarantined for one lease period: short here.
  const cache = createRedisCache({ cluster: { rootNodes: [rootNode] }, keyPrefix: prefix, commandTimeout: '1s', restartQuarantine: '1s', onWarning: () => undefined });
  await cache.connect();
  const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, leaseTtl: '1s', journal: { pollInterval: '1h' } });
  return { cache, engine };
}

async function shut(instance: Instance): Promise<void> {
  await instance.engine.close();
  await instance.cache.close();
}

/** Until `k` is a hit (a fresh slot of a new cluster is quarantined first). */
async function untilHit(engine: WriteThrough<string>, value: string): Promise<void> {
  await until(`a cache hit of ${value}`, async () => {
    const entry = await engine.readEntry('k');
    assert.equal(entry.value, value);
    return entry.source === 'hit';
  });
}

/**
 * Reads `k` through a rolled-back cache until `answers` reads were answered by the cache (not the
 * store fallback of the quarantine); every value read is returned. A read the rolled-back record
 * answered would return v1.
 */
async function readThroughReturn(engine: WriteThrough<string>, answers = 20): Promise<{ values: Set<string | undefined>; sources: Set<string> }> {
  const values = new Set<string | undefined>();
  const sources = new Set<string>();
  let answered = 0;
  // Until a hit too (a fill may fail on a loaded machine, and the next read misses again); bounded.
  const deadline = Date.now() + 60_000;
  while (answered < answers || !sources.has('hit')) {
    if (Date.now() > deadline) throw new Error(`the cache did not serve again (sources seen: ${[...sources].join(', ')})`);
    const entry = await engine.readEntry('k');
    values.add(entry.value);
    sources.add(entry.source);
    if (entry.source !== 'store-fallback') answered++;
    else await sleep(5);
  }
  return { values, sources };
}

async function world(args: readonly string[] = []) {
  const cluster = await startRedisClusterWithReplica(args);
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-cluster-rollback-'));
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  const prefix = `cluster-guard:${randomUUID().slice(0, 8)}:`;
  const cleanup = async () => {
    await store.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { cluster, store, prefix, cleanup };
}

async function role(server: RedisServer): Promise<string | undefined> {
  return /(?:^|\n)role:(\w+)/.exec(await server.cli('INFO', 'replication'))?.[1];
}

describe('Redis Cluster rolled back under an acknowledged write', () => {
  const { skip } = needRedisServer();

  it('a failover to a replica that missed the publish of v2 does not serve v1', { skip }, async () => {
    const { cluster, store, prefix, cleanup } = await world();
    const { master, replica } = cluster;
    let current = await open(master.url, store, prefix);
    try {
      await current.engine.write('k', 'v1');
      await untilHit(current.engine, 'v1');
      await untilReplicated(master, replica); // the replica holds v1 (and the slot's incarnation key)

      // The replica misses v2: stopped, its link cut, so nothing of v2 is in its socket either.
      replica.pause();
      try {
        await master.cli('CLIENT', 'KILL', 'TYPE', 'replica');
        await current.engine.write('k', 'v2'); // acknowledged: leased and published on the master
        assert.equal((await current.engine.readEntry('k')).source, 'hit', 'v2 is cached on the master');
        await master.kill();
      } finally {
        replica.resume();
      }
      await shut(current);
      await until('the replica to take over', async () => (await replica.cli('CLUSTER', 'FAILOVER', 'TAKEOVER')).trim() === 'OK' || (await role(replica)) === 'master');
      await until('the replica to be master with cluster_state:ok', async () => (await role(replica)) === 'master' && (await replica.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'));
      assert.match(await replica.cli('GET', `${prefix}ns:k`), /\|v1:0:/, 'the promoted replica holds v1 (stamped), which v2 replaced');
      assert.equal((await store.read('ns', 'k'))?.version, 2);

      current = await open(replica.url, store, prefix);
      const { values, sources } = await readThroughReturn(current.engine);
      assert.deepEqual([...values], ['v2'], `every read returns the acknowledged v2 (sources: ${[...sources].join(', ')})`);
      assert.ok(sources.has('hit'), 'the cache serves again once the slot\'s quarantine is over');
      assert.ok((current.cache.stats().datasetQuarantines ?? 0) >= 1, 'the promoted replica\'s slot was claimed and quarantined');
    } finally {
      await shut(current).catch(() => undefined);
      await cleanup();
    }
  });

  it('a master that failed over, resynced the older dataset of its replica and was promoted back (same run_id) does not serve v1', { skip }, async () => {
    const { cluster, store, prefix, cleanup } = await world();
    const { master, replica } = cluster;
    let current = await open(master.url, store, prefix);
    try {
      await current.engine.write('k', 'v1');
      await untilHit(current.engine, 'v1');
      await untilReplicated(master, replica); // the replica holds v1
      const runId = /run_id:(\w+)/.exec(await master.cli('INFO', 'server'))?.[1];
      // The replica misses v2 and cannot catch up: stopped, its link cut, and the master's default
      // user refused PSYNC/SYNC (the test's own clients need neither).
      replica.pause();
      try {
        await master.cli('ACL', 'SETUSER', 'default', '-psync', '-sync');
        await master.cli('CLIENT', 'KILL', 'TYPE', 'replica');
        await current.engine.write('k', 'v2');
        assert.equal((await current.engine.readEntry('k')).source, 'hit', 'v2 is cached on the master');
      } finally {
        replica.resume();
      }
      await shut(current);
      // The replica takes over without v2; no Lockstep call touches the slot there. The old master
      // becomes its replica and resynchronises the older dataset (v1, and the slot's incarnation key
      // naming the old master's own run_id).
      await until('the replica to take over', async () => (await replica.cli('CLUSTER', 'FAILOVER', 'TAKEOVER')).trim() === 'OK' || (await role(replica)) === 'master');
      await until('the old master to replicate the new one', async () => (await role(master)) === 'slave' && (await master.cli('INFO', 'replication')).includes('master_link_status:up'));
      await master.cli('ACL', 'SETUSER', 'default', '+psync', '+sync');
      // Failback: the old master is promoted again (a manual failover: it catches up first), same process.
      await until('the old master to be promoted back', async () => (await master.cli('CLUSTER', 'FAILOVER')).trim() === 'OK' || (await role(master)) === 'master');
      await until('the old master to be master with cluster_state:ok', async () => (await role(master)) === 'master' && (await master.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'));
      assert.equal(/run_id:(\w+)/.exec(await master.cli('INFO', 'server'))?.[1], runId, 'the same process, the same run_id');
      assert.match(await master.cli('GET', `${prefix}ns:k`), /\|v1:0:/, 'it holds v1 again, which v2 replaced');

      current = await open(master.url, store, prefix);
      const { values, sources } = await readThroughReturn(current.engine);
      assert.deepEqual([...values], ['v2'], `every read returns the acknowledged v2 (sources: ${[...sources].join(', ')})`);
      assert.ok(sources.has('hit'), 'the cache serves again once the slot\'s quarantine is over');
    } finally {
      await shut(current).catch(() => undefined);
      await cleanup();
    }
  });

  it('a master restarted from a snapshot taken before v2 does not serve v1', { skip }, async () => {
    const { cluster, store, prefix, cleanup } = await world();
    const { master } = cluster;
    let current = await open(master.url, store, prefix);
    try {
      await current.engine.write('k', 'v1');
      await untilHit(current.engine, 'v1');
      await master.cli('SAVE');
      await current.engine.write('k', 'v2');
      assert.equal((await current.engine.readEntry('k')).source, 'hit', 'v2 is cached');
      await master.kill();
      await shut(current);
      await master.restart(); // the same port and nodes.conf: it owns every slot again, from the snapshot
      await until('the restarted master to report cluster_state:ok', async () => (await master.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'));
      assert.match(await master.cli('GET', `${prefix}ns:k`), /\|v1:0:/, 'the restarted master holds the snapshot\'s v1');

      current = await open(master.url, store, prefix);
      const { values, sources } = await readThroughReturn(current.engine);
      assert.deepEqual([...values], ['v2'], `every read returns the acknowledged v2 (sources: ${[...sources].join(', ')})`);
      assert.ok(sources.has('hit'), 'the cache serves again once the slot\'s quarantine is over');
    } finally {
      await shut(current).catch(() => undefined);
      await cleanup();
    }
  });
});
