// The race, in a Redis Cluster: a write holds its lease and its store write is in flight when the
// master fails over; the replica that takes over holds the lease record, but under the old master's
// incarnation, so the slot's guard (src/cache/redis-scripts.ts, CLUSTER_SCRIPTS) treats it as absent:
// the lease is lost. A reader on another instance could then get a fill lease and read the store
// before the write commits; the writer commits and dies before completeWrite, and the reader's fill of
// the older value would be served until its TTL. The slot's quarantine (restartQuarantine ≥ leaseTtl,
// from the first script that touches the slot after the failover) makes the reader fall back to the
// store without filling until every pre-failover write has committed or given up (the lease budget).
// The mutant `cluster-quarantine-off` (npm run mutation) drops it: this test fails then.
// docs/protocol.md, "Redis Cluster".
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
import { needRedisServer, startRedisClusterWithReplica, untilReplicated, type RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

/** Short leases keep the test quick; the quarantine must be at least the lease (the adapter's rule). */
const LEASE = '5s';

interface Instance {
  readonly redis: RedisCacheAdapter;
  readonly engine: WriteThrough<string>;
  readonly warnings: string[];
}

function open(rootNode: string, prefix: string, store: StoreAdapter, wrap: (cache: RedisCacheAdapter) => CacheAdapter = (cache) => cache): Instance {
  const warnings: string[] = [];
  const redis = createRedisCache({ cluster: { rootNodes: [rootNode] }, keyPrefix: prefix, commandTimeout: '1s', restartQuarantine: LEASE, onWarning: (message) => warnings.push(message) });
  const engine = createWriteThrough<string>({ store, cache: wrap(redis), namespace: 'ns', metrics: false, leaseTtl: LEASE, journal: { pollInterval: '100ms' } });
  return { redis, engine, warnings };
}

/** The slot of `ns:k` answers, or says it is quarantined (a peek touches the slot, as any call does). */
function slotState(cache: RedisCacheAdapter): Promise<'answers' | 'quarantined' | 'down'> {
  return cache.peek('ns:k').then(
    () => 'answers' as const,
    (error: { code?: string }) => (error.code === 'E_CACHE_QUARANTINED' ? 'quarantined' : 'down'),
  );
}

async function role(server: RedisServer): Promise<string | undefined> {
  return /(?:^|\n)role:(\w+)/.exec(await server.cli('INFO', 'replication'))?.[1];
}

describe('Redis Cluster failover while a write is in flight', () => {
  const { skip } = needRedisServer();

  it('a reader on another instance cannot fill the pre-commit value of a write whose lease was lost in the failover and whose writer died', { skip }, async () => {
    const cluster = await startRedisClusterWithReplica();
    const { master, replica } = cluster;
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-cluster-quarantine-'));
    const store = createSqliteStore({ path: join(dir, 'store.db') });
    const prefix = `cluster-quarantine:${randomUUID().slice(0, 8)}:`;
    const writerStore = new ChaosStore(store);
    let writerCache: ChaosCache | undefined;
    const writer = open(master.url, prefix, writerStore, (cache) => (writerCache = new ChaosCache(cache)));
    let reader: Instance | undefined;
    try {
      // A fresh cluster's slot (no incarnation key, nodes up for less than the quarantine) is quarantined first: wait it out.
      await until('the fresh slot to answer', async () => (await slotState(writer.redis)) === 'answers');
      await writer.engine.write('k', 'v1');
      await until('v1 to be a hit', async () => (await writer.engine.readEntry('k')).source === 'hit');

      // v2's lease is taken, then its store write waits at the gate; completeWrite never returns (the writer "dies").
      const gate = createGate();
      writerStore.faults.next('write', { kind: 'pause', when: 'before', gate });
      writerCache!.faults.next('completeWrite', { kind: 'hang', when: 'before' });
      const abandoned = writer.engine.write('k', 'v2');
      abandoned.catch(() => undefined);
      await gate.reached;
      await untilReplicated(master, replica); // the replica holds v2's write lease record

      await master.kill();
      await until('the replica to take over', async () => (await replica.cli('CLUSTER', 'FAILOVER', 'TAKEOVER')).trim() === 'OK' || (await role(replica)) === 'master');
      await until('the replica to be master with cluster_state:ok', async () => (await role(replica)) === 'master' && (await replica.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'));
      assert.match(await replica.cli('GET', `${prefix}ns:k`), /\|w/, "the promoted replica holds v2's write lease, stamped under the old master");

      // A reader on another instance misses (the lease record is from a lost incarnation) and reads the store before v2 commits.
      reader = open(replica.url, prefix, store);
      const during = await reader.engine.readEntry('k');
      const stateDuring = await slotState(reader.redis);
      assert.equal(during.value, 'v1', 'v2 has not committed yet');

      gate.release(); // v2 commits; its writer never completes (hung completeWrite)
      await until('v2 to commit', async () => (await store.read('ns', 'k'))?.version === 2);

      // Once the slot's quarantine is over, the cache answers again: what it serves is v2.
      let answered = 0;
      const values = new Set<string | undefined>();
      await until('reads answered by the cache', async () => {
        const entry = await reader!.engine.readEntry('k');
        values.add(entry.value);
        if (entry.source !== 'store-fallback') answered++;
        return answered >= 5;
      });
      assert.deepEqual([...values], ['v2'], 'never the older v1 read before v2 committed');
      assert.equal(stateDuring, 'quarantined', "the read ran within the slot's quarantine (v2's store step was held less than LEASE)");
      assert.equal(during.source, 'store-fallback', 'a quarantined slot answered no call: the read went to the store, and nothing was filled');
      await until('v2 to be a hit (filled after the quarantine)', async () => (await reader!.engine.readEntry('k')).source === 'hit');
      assert.equal(reader.redis.stats().datasetQuarantines, 1, "the reader's first touch claimed the slot and quarantined it");
      assert.ok(reader.warnings.some((message) => /found a hash slot whose records it cannot prove.*E_CACHE_QUARANTINED/.test(message)), reader.warnings.join('\n'));
    } finally {
      await reader?.engine.close();
      await reader?.redis.close();
      await writer.redis.close(); // the writer's engine stays abandoned, as a dead process's would
      await store.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
