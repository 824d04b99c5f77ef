// A Redis Cluster slot whose incarnation key is deleted under the live process (a user's DEL or
// UNLINK of `<prefix>#inc{…}`, an allkeys-* eviction where CONFIG is disabled so the adapter cannot
// see the policy) while a write holds its lease and its store step is in flight. The next script
// claims the slot: the write's lease record carries the old stamp, so it is absent and the lease is
// lost. The node has been up for longer than the quarantine and was never promoted, which the guard
// took for a first use of the slot (no quarantine): a reader on another instance got a fill lease,
// read the store before the write committed, filled the older value, and the writer, dying after its
// commit, never fenced it: v1 served after v2 committed, until its TTL. A first use now also needs an
// empty slot (CLUSTER COUNTKEYSINSLOT): records left in the slot mean an incarnation was lost, and
// the claim quarantines it. Mutant: cluster-first-use-nonempty-slot. docs/protocol.md, "Redis Cluster".
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
import { needRedisServer, startRedisClusterWithReplica, untilUptime } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

const LEASE = '5s';

interface Instance {
  readonly redis: RedisCacheAdapter;
  readonly engine: WriteThrough<string>;
}

function open(rootNode: string, prefix: string, store: StoreAdapter, wrap: (cache: RedisCacheAdapter) => CacheAdapter = (cache) => cache): Instance {
  const redis = createRedisCache({ cluster: { rootNodes: [rootNode] }, keyPrefix: prefix, commandTimeout: '1s', restartQuarantine: LEASE, onWarning: () => undefined });
  const engine = createWriteThrough<string>({ store, cache: wrap(redis), namespace: 'ns', metrics: false, leaseTtl: LEASE, journal: { pollInterval: '100ms' } });
  return { redis, engine };
}

function slotState(cache: RedisCacheAdapter): Promise<'answers' | 'quarantined' | 'down'> {
  return cache.peek('ns:k').then(
    () => 'answers' as const,
    (error: { code?: string }) => (error.code === 'E_CACHE_QUARANTINED' ? 'quarantined' : 'down'),
  );
}

describe('Redis Cluster: an incarnation key deleted under the live process', () => {
  const { skip } = needRedisServer();

  it('a reader cannot fill the pre-commit value of a write whose lease the new claim lost, its writer dead', { skip }, async () => {
    const cluster = await startRedisClusterWithReplica();
    const { master } = cluster;
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-cluster-inc-deleted-'));
    const store = createSqliteStore({ path: join(dir, 'store.db') });
    const prefix = `adv-cluster-guard:${randomUUID().slice(0, 8)}:`;
    const writerStore = new ChaosStore(store);
    let writerCache: ChaosCache | undefined;
    const writer = open(master.url, prefix, writerStore, (cache) => (writerCache = new ChaosCache(cache)));
    let reader: Instance | undefined;
    try {
      await untilUptime(master, 5); // past the uptime rule: only the first-use rule decides below
      await until('the slot to answer', async () => (await slotState(writer.redis)) === 'answers');
      await writer.engine.write('k', 'v1');
      await until('v1 to be a hit', async () => (await writer.engine.readEntry('k')).source === 'hit');

      const gate = createGate();
      writerStore.faults.next('write', { kind: 'pause', when: 'before', gate });
      writerCache!.faults.next('completeWrite', { kind: 'hang', when: 'before' });
      const abandoned = writer.engine.write('k', 'v2');
      abandoned.catch(() => undefined);
      await gate.reached;

      const incKeys = (await master.cli('KEYS', `${prefix}#inc*`)).split('\n').filter((line) => line !== '');
      assert.equal(incKeys.length, 1, 'one slot touched, one incarnation key');
      assert.equal((await master.cli('DEL', incKeys[0]!)).trim(), '1'); // the user's DEL, under the live process
      assert.match(await master.cli('GET', `${prefix}ns:k`), /\|w/, "v2's write lease record is still in the slot");

      reader = open(master.url, prefix, store);
      const during = await reader.engine.readEntry('k');
      const stateDuring = await slotState(reader.redis);
      assert.equal(during.value, 'v1', 'v2 has not committed yet');

      gate.release();
      await until('v2 to commit', async () => (await store.read('ns', 'k'))?.version === 2);

      let answered = 0;
      const values = new Set<string | undefined>();
      await until('reads answered by the cache', async () => {
        const entry = await reader!.engine.readEntry('k');
        values.add(entry.value);
        if (entry.source !== 'store-fallback') answered++;
        return answered >= 5;
      });
      assert.deepEqual([...values], ['v2'], 'never the older v1 read before v2 committed');
      assert.equal(stateDuring, 'quarantined', 'the claim after the deleted key quarantined the slot');
      assert.equal(during.source, 'store-fallback');
    } finally {
      await reader?.engine.close();
      await reader?.redis.close();
      await writer.redis.close();
      await store.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
