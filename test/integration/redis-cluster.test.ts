// The Redis adapter in cluster mode: a test-owned 3-master Redis Cluster on spare ports (started
// within ~10 s, always stopped), the shared conformance suite against it, and scan across masters.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCluster } from 'redis';
import { createRedisCache } from '../../src/cache/redis.js';
import { IncarnationKeys, keySlot } from '../../src/cache/redis-slots.js';
import type { LeaseToken } from '../../src/types.js';
import { runCacheAdapterSuite, stringEntry } from '../conformance/cache-adapter.suite.js';
import { needRedisServer, type RedisTestCluster, startRedisCluster, untilUptime } from '../helpers/redis-server.js';

const installed = needRedisServer();
const TTL = 60_000;
const LEASE = 1000;

describe('Redis cache (3-master Redis Cluster)', { skip: installed.skip }, () => {
  let cluster: RedisTestCluster;
  before(async () => {
    cluster = await startRedisCluster(3, 10_000);
    // The first use of a slot on a node up for less than restartQuarantine (5 s) is quarantined
    // (docs/protocol.md, "Redis Cluster"): these tests are about other things.
    await Promise.all(cluster.nodes.map((node) => untilUptime(node, 5)));
  });
  after(async () => {
    await cluster?.stop();
  });

  runCacheAdapterSuite('redis cluster', async () => {
    const cache = createRedisCache({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: 'suite:' });
    return { cache, advance: (ms) => sleep(ms), close: () => cache.close() };
  });

  it('scan sees the keys of every master, and only those under the prefix', async () => {
    const cache = createRedisCache({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: `scan-${randomUUID().slice(0, 6)}:` });
    try {
      assert.equal(cache.name, 'redis-cluster');
      const keys = Array.from({ length: 60 }, (_, i) => `ns:k${i}`);
      for (const [i, key] of keys.entries()) {
        const got = await cache.get(key, LEASE);
        assert.equal(got.kind, 'miss');
        assert.equal(await cache.fill(key, got.token as LeaseToken, stringEntry(i + 1, `v${i}`), TTL), true);
      }
      await cache.beginWrite('ns:writing', 'w', LEASE);
      await cache.saveJournalCursor('j1', { id: 7 });
      const otherPrefix = createRedisCache({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: `${cache.keyPrefix}x` });
      await otherPrefix.beginWrite('ns:k1', 'w', LEASE);
      await otherPrefix.close();

      // where the keys live: every master holds some of them
      const perMaster = await Promise.all(
        cluster.nodes.map(async (node) => (await node.cli('--scan', '--pattern', `${cache.keyPrefix}ns:*`)).split('\n').filter(Boolean)),
      );
      for (const [i, held] of perMaster.entries()) assert.ok(held.length > 0, `master ${cluster.nodes[i]!.port} holds keys of the test`);

      const seen = new Map<string, string>();
      for await (const view of cache.scan('ns:')) {
        assert.ok(!seen.has(view.key), `${view.key} yielded once`);
        seen.set(view.key, view.kind);
      }
      assert.deepEqual([...seen.keys()].sort(), [...keys, 'ns:writing'].sort());
      assert.equal(seen.get('ns:writing'), 'write');
      assert.equal(seen.get('ns:k0'), 'value');
    } finally {
      await cache.close();
    }
  });

  it('a redis+cluster:// url and a cluster client you pass work too; close() leaves your client open', async () => {
    const url = `redis+cluster://${cluster.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`;
    const fromUrl = createRedisCache({ url, keyPrefix: 'url:' });
    const client = createCluster({ rootNodes: [{ url: cluster.rootNodes[0]! }] });
    client.on('error', () => undefined);
    await client.connect();
    const passed = createRedisCache({ client, keyPrefix: 'url:' });
    try {
      await fromUrl.connect();
      assert.equal(passed.name, 'redis-cluster');
      const got = await fromUrl.get('ns:a', LEASE);
      assert.equal(got.kind, 'miss');
      assert.deepEqual(await passed.get('ns:a', LEASE), { kind: 'miss', token: undefined }, 'both see the same fill lease');
      assert.equal(await passed.fill('ns:a', got.token as LeaseToken, stringEntry(1, 'one'), TTL), true);
      assert.deepEqual(await fromUrl.get('ns:a', LEASE), { kind: 'value', version: 1, payload: 'one', tombstone: false });
      await fromUrl.ping();
      await passed.ping();
    } finally {
      await fromUrl.close();
      await passed.close();
    }
    assert.equal(client.isOpen, true);
    client.destroy();
  });

  it('slots: the adapter computes the slot Redis does, and every incarnation key shares its record\'s slot', async () => {
    const node = cluster.nodes[0]!;
    const keys = ['', 'a', 'lockstep:ns:k', 'x{tag}y', 'x{}y', '{a}{b}', 'caf\u00e9', 'ns:\u{1F600}', 'p{', 'p}{q'];
    for (let i = 0; i < 40; i++) keys.push(`suite:ns:k${i}`);
    const incarnations = new IncarnationKeys('suite:#inc');
    for (const key of keys) {
      const slot = Number((await node.cli('CLUSTER', 'KEYSLOT', key)).trim());
      assert.equal(keySlot(key), slot, `slot of ${JSON.stringify(key)}`);
      const inc = incarnations.forKey(key);
      assert.equal(Number((await node.cli('CLUSTER', 'KEYSLOT', inc)).trim()), slot, `${inc} is in the slot of ${JSON.stringify(key)}`);
    }
  });

  it('a connected cluster cache gives no warning about persistence or replicas: it is guarded', async () => {
    const node = cluster.nodes[1]!;
    await node.cli('CONFIG', 'SET', 'save', '3600 1');
    try {
      const warnings: string[] = [];
      const cache = createRedisCache({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: `risk-${randomUUID().slice(0, 6)}:`, onWarning: (m) => warnings.push(m) });
      try {
        await cache.connect();
        const got = await cache.get('ns:a', LEASE);
        assert.equal(got.kind, 'miss', 'a first use of a slot on a node up for longer than the quarantine is not quarantined');
        assert.deepEqual(warnings, []);
        assert.equal(cache.stats().datasetQuarantines, 0);
      } finally {
        await cache.close();
      }
    } finally {
      await node.cli('CONFIG', 'SET', 'save', '');
    }
  });

  it('the journal cursor works in cluster mode and never moves backwards', async () => {
    const cache = createRedisCache({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: 'cursor:' });
    try {
      assert.equal(await cache.loadJournalCursor('j1'), undefined);
      await cache.saveJournalCursor('j1', { id: 9, stamp: 'ab12' });
      await cache.saveJournalCursor('j1', { id: 2 });
      assert.deepEqual(await cache.loadJournalCursor('j1'), { id: 9, stamp: 'ab12' });
      await cache.saveJournalCursor('j1', { id: 2 }, true);
      assert.deepEqual(await cache.loadJournalCursor('j1'), { id: 2 });
    } finally {
      await cache.close();
    }
  });
});
