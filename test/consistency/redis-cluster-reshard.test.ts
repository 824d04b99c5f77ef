// Resharding a Redis Cluster under Lockstep traffic: the slots of the test's keys are moved from
// their master to another one key by key (CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT
// NODE, as redis-cli --cluster reshard does), and back, while one instance writes and another reads.
// During a migration a script's two keys (record, incarnation key) may be on different nodes: Redis
// answers TRYAGAIN (or ASK, which node-redis follows), a cache error, so reads use the store and
// writes follow the failure policy. A slot that arrives on another node comes with its incarnation
// key naming the old one: it is claimed and quarantined there, its records absent.
// What is checked: every read returns at least the version acknowledged before it started (never a
// value older than an acknowledged write), and once the moves are over the cache serves hits again.
// docs/protocol.md, "Redis Cluster".
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createRedisCache } from '../../src/cache/redis.js';
import { keySlot } from '../../src/cache/redis-slots.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { clusterMyId, needRedisServer, startRedisCluster, untilUptime, type RedisServer } from '../helpers/redis-server.js';

const LEASE = '2s';
const KEYS = Array.from({ length: 12 }, (_, i) => `k${i}`);

async function owner(nodes: readonly RedisServer[], slot: number): Promise<RedisServer> {
  for (const node of nodes) {
    const nodesLine = (await node.cli('CLUSTER', 'NODES')).split('\n').find((line) => line.includes('myself'))!;
    const ranges = nodesLine.split(' ').slice(8);
    for (const range of ranges) {
      const [from, to] = range.split('-').map(Number) as [number, number | undefined];
      if (slot >= from && slot <= (to ?? from)) return node;
    }
  }
  throw new Error(`no owner of slot ${slot}`);
}

/** Moves one slot key by key, with a pause between keys so that traffic meets the migrating state. */
async function moveSlot(nodes: readonly RedisServer[], slot: number, from: RedisServer, to: RedisServer): Promise<void> {
  const [fromId, toId] = await Promise.all([clusterMyId(from), clusterMyId(to)]);
  const s = String(slot);
  assert.equal((await to.cli('CLUSTER', 'SETSLOT', s, 'IMPORTING', fromId)).trim(), 'OK');
  assert.equal((await from.cli('CLUSTER', 'SETSLOT', s, 'MIGRATING', toId)).trim(), 'OK');
  for (let round = 0; round < 1000; round++) {
    const keys = (await from.cli('CLUSTER', 'GETKEYSINSLOT', s, '1')).split('\n').filter((line) => line !== '');
    if (keys.length === 0) break;
    await from.cli('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', keys[0]!);
    await sleep(30);
  }
  for (const node of [to, from, ...nodes.filter((n) => n !== to && n !== from)]) await node.cli('CLUSTER', 'SETSLOT', s, 'NODE', toId);
}

describe('Redis Cluster resharding under traffic', () => {
  const { skip } = needRedisServer();

  it('no read returns a value older than a write acknowledged before it started, while slots move and back', { skip }, async () => {
    const cluster = await startRedisCluster(3, 15_000);
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-cluster-reshard-'));
    const store = createSqliteStore({ path: join(dir, 'store.db') });
    const prefix = `adv-cluster-guard:${randomUUID().slice(0, 8)}:`;
    const open = () => {
      const redis = createRedisCache({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: prefix, commandTimeout: '1s', restartQuarantine: LEASE, onWarning: () => undefined });
      return { redis, engine: createWriteThrough<string>({ store, cache: redis, namespace: 'ns', metrics: false, leaseTtl: LEASE, journal: { pollInterval: '50ms' } }) };
    };
    const writer = open();
    const reader = open();
    const acked = new Map<string, number>();
    const errors = new Map<string, number>();
    const sources = new Map<string, number>();
    let stop = false;
    let stale: string | undefined;
    try {
      await Promise.all(cluster.nodes.map((node) => untilUptime(node, 3)));
      for (const key of KEYS) acked.set(key, (await writer.engine.write(key, 'v0')).version as number);
      const writes = (async () => {
        for (let n = 1; !stop; n++) {
          const key = KEYS[n % KEYS.length]!;
          try {
            const done = await writer.engine.write(key, `v${n}`);
            acked.set(key, Math.max(acked.get(key) ?? 0, Number(done.version)));
          } catch (error) {
            const code = (error as { code?: string }).code ?? 'other';
            errors.set(`write ${code}`, (errors.get(`write ${code}`) ?? 0) + 1);
          }
        }
      })();
      const reads = (async () => {
        for (let n = 0; !stop; n++) {
          const key = KEYS[n % KEYS.length]!;
          const floor = acked.get(key) ?? 0;
          try {
            const entry = await reader.engine.readEntry(key);
            sources.set(entry.source, (sources.get(entry.source) ?? 0) + 1);
            if (Number(entry.version) < floor) stale ??= `${key}: read version ${String(entry.version)} (${entry.source}) after version ${floor} was acknowledged`;
          } catch (error) {
            const code = (error as { code?: string }).code ?? 'other';
            errors.set(`read ${code}`, (errors.get(`read ${code}`) ?? 0) + 1);
          }
        }
      })();

      const slots = [...new Set(KEYS.map((key) => keySlot(`${prefix}ns:${key}`)))].slice(0, 4);
      for (const slot of slots) {
        const from = await owner(cluster.nodes, slot);
        const to = cluster.nodes.find((node) => node !== from)!;
        await moveSlot(cluster.nodes, slot, from, to);
        await moveSlot(cluster.nodes, slot, to, from);
      }
      await sleep(3000); // the traffic meets the moved slots' quarantines
      stop = true;
      await Promise.all([writes, reads]);
      assert.equal(stale, undefined, stale);
      const hits = async () => {
        let n = 0;
        for (const key of KEYS) if ((await reader.engine.readEntry(key)).source === 'hit') n++;
        return n;
      };
      let got = 0;
      for (let i = 0; i < 200 && got < KEYS.length; i++) {
        got = await hits();
        if (got < KEYS.length) await sleep(50);
      }
      assert.ok((sources.get('store-fallback') ?? 0) > 0, `the traffic met the migrations (TRYAGAIN) or the quarantines: ${JSON.stringify(Object.fromEntries(sources))}`);
      assert.equal(got, KEYS.length, 'every key is a hit again after the moves');
    } finally {
      stop = true;
      await writer.engine.close();
      await reader.engine.close();
      await writer.redis.close();
      await reader.redis.close();
      await store.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
