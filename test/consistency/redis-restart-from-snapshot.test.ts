// The race: Redis with persistence (its default configuration saves RDB snapshots) restarts from a
// snapshot taken before an acknowledged write was published. The write held its lease and
// published normally, so no journal row stands for it; the restarted Redis would serve the older
// value (with its remaining TTL) and nothing would replay it away. A failover to an asynchronous
// replica that had not received the publish is the same rollback. The Redis adapter's dataset guard
// (src/cache/redis-dataset.ts) removes a dataset it cannot prove it wrote under the running server
// process; these tests restart Redis under a client that reopens, one that stays connected (and
// reconnects by itself), several instances at once, and promote a replica. The mutant
// `dataset-guard-trusts-rollback` (npm run mutation) reverts the guard: every test here fails then.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startStallRelay } from '../helpers/stall-relay.js';
import { until } from '../helpers/until.js';

interface Instance {
  readonly cache: RedisCacheAdapter;
  readonly engine: WriteThrough<string>;
  readonly warnings: string[];
}

async function open(url: string, store: SqliteStore, prefix: string): Promise<Instance> {
  const warnings: string[] = [];
  // A restarted Redis is quarantined for one lease period (redis-restart-quarantine.test.ts): short here.
  const cache = createRedisCache({ url, keyPrefix: prefix, commandTimeout: '1s', restartQuarantine: '1s', onWarning: (message) => void (message.includes('E_CACHE_QUARANTINED') || warnings.push(message)) });
  await cache.connect();
  const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, leaseTtl: '1s', journal: { pollInterval: '1h' } });
  await until('the cache to answer (its quarantine is over)', () => cache.ping().then(() => true));
  await engine.drainJournal(); // the start's replay failed during the quarantine; the poll is off
  return { cache, engine, warnings };
}

async function shut(instance: Instance): Promise<void> {
  await instance.engine.close();
  await instance.cache.close();
}

/**
 * Reads `k` in a loop while the cache comes back, until `answers` reads were answered with the
 * cache working (not the store fallback); returns every value read. A read that the rolled-back
 * cache answered would return the snapshot's value.
 */
async function readThroughReturn(engine: WriteThrough<string>, answers = 20): Promise<{ values: Set<string | undefined>; sources: Set<string> }> {
  const values = new Set<string | undefined>();
  const sources = new Set<string>();
  let answered = 0;
  const deadline = Date.now() + 20_000;
  while (answered < answers) {
    if (Date.now() > deadline) throw new Error(`the cache did not answer again (sources seen: ${[...sources].join(', ')})`);
    const entry = await engine.readEntry('k');
    values.add(entry.value);
    sources.add(entry.source);
    if (entry.source !== 'store-fallback') answered++;
    else await sleep(5);
  }
  return { values, sources };
}

/** A fresh world: a SQLite store and a redis-server that saves RDB snapshots (or as `args` says). */
async function world(args: readonly string[] = ['--save', '3600 1']) {
  const redis = await startRedisServer(args);
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-rollback-'));
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  const prefix = `rollback:${randomUUID().slice(0, 8)}:`;
  const cleanup = async () => {
    await store.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { redis, store, prefix, cleanup };
}

/** v1 cached and in a snapshot, then v2 written (leased, published: no journal row) after it. */
async function snapshotThenWrite(redis: RedisServer, engine: WriteThrough<string>): Promise<void> {
  await engine.write('k', 'v1');
  assert.equal((await engine.readEntry('k')).source, 'hit', 'v1 is cached');
  await redis.cli('SAVE');
  await engine.write('k', 'v2');
  assert.equal((await engine.readEntry('k')).source, 'hit', 'v2 is cached');
}

describe('Redis restarted from a snapshot older than an acknowledged write', () => {
  const { skip } = needRedisServer();

  it('a client opened after the restart does not serve the value the snapshot held', { skip }, async () => {
    const { redis, store, prefix, cleanup } = await world();
    let current = await open(redis.url, store, prefix);
    try {
      await snapshotThenWrite(redis, current.engine);
      await redis.kill();
      await shut(current);
      await redis.restart(); // loads the snapshot: v1 is back, with its TTL
      assert.match(await redis.cli('GET', `${prefix}ns:k`), /^v1:0:/, 'the restarted Redis holds the snapshot\'s v1');
      current = await open(redis.url, store, prefix);
      assert.equal((await store.read('ns', 'k'))?.version, 2);
      await current.engine.drainJournal(); // the start's replay is over: reads use the cache again
      const entry = await current.engine.readEntry('k');
      assert.equal(entry.value, 'v2', 'the acknowledged v2, not the snapshot\'s v1');
      assert.notEqual(entry.source, 'store-fallback');
      assert.equal(current.cache.stats().datasetFlushes, 1);
      assert.equal(current.warnings.length, 1);
      assert.match(current.warnings[0]!, /cannot prove it wrote.*keys were removed and the cache starts cold/);
    } finally {
      await shut(current);
      await cleanup();
    }
  });

  it('a client that stays connected (and reconnects by itself) never serves the snapshot\'s value', { skip }, async () => {
    const { redis, store, prefix, cleanup } = await world();
    const instance = await open(redis.url, store, prefix);
    try {
      await snapshotThenWrite(redis, instance.engine);
      await redis.restart(); // killed and started again under the open client
      const { values, sources } = await readThroughReturn(instance.engine);
      assert.deepEqual([...values], ['v2'], `every read returned v2 (sources: ${[...sources].join(', ')})`);
      assert.equal(instance.cache.stats().datasetFlushes, 1);
      assert.match(await redis.cli('GET', `${prefix}ns:k`), /^v2:0:/, 'the cache was filled again with v2');
    } finally {
      await shut(instance);
      await cleanup();
    }
  });

  it('a client you pass (disableOfflineQueue) is guarded the same way, and left alone once the adapter is closed', { skip }, async () => {
    const { redis, store, prefix, cleanup } = await world();
    const client = createClient({ url: redis.url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 50 } });
    client.on('error', () => undefined);
    await client.connect();
    const cache = createRedisCache({ client, keyPrefix: prefix, restartQuarantine: '1s', onWarning: () => undefined });
    const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, leaseTtl: '1s', journal: { pollInterval: '1h' } });
    try {
      await until('the cache to answer (its quarantine is over)', () => cache.ping().then(() => true));
      await engine.drainJournal();
      await snapshotThenWrite(redis, engine);
      await redis.restart();
      const { values } = await readThroughReturn(engine);
      assert.deepEqual([...values], ['v2']);
      assert.equal(cache.stats().datasetFlushes, 1);
      await engine.close();
      await cache.close();
      // The caller's client lives on: a later rollback under it is no longer the adapter's business.
      await redis.cli('SAVE');
      await redis.restart();
      await until('the caller\'s client to reconnect', async () => (await client.get(`${prefix}ns:k`)) !== null);
      assert.match(String(await client.get(`${prefix}ns:k`)), /^v2:0:/, 'nothing was removed after close()');
    } finally {
      await engine.close();
      await cache.close();
      client.destroy();
      await cleanup();
    }
  });

  it('no command of the adapter reaches a reconnected server before its dataset is verified (MONITOR)', { skip }, async () => {
    const { redis, store, prefix, cleanup } = await world();
    const relay = await startStallRelay(redis.url);
    const instance = await open(relay.urlFor(redis.url), store, prefix);
    let monitor: ReturnType<typeof spawn> | undefined;
    try {
      await snapshotThenWrite(redis, instance.engine);
      await relay.down(); // the adapter loses its connection and cannot reconnect yet
      await redis.restart();
      // Every command the restarted server executes, in order, with the connection that sent it.
      monitor = spawn('redis-cli', ['-p', String(redis.port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let log = '';
      monitor.stdout!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
      });
      await until('MONITOR to start', async () => {
        await redis.cli('PING');
        return log.includes('"PING"');
      });
      const reading = readThroughReturn(instance.engine);
      await relay.up();
      const { values } = await reading;
      assert.deepEqual([...values], ['v2']);

      const byConnection = new Map<string, string[]>();
      for (const line of log.split('\n')) {
        const match = /^[\d.]+ \[\d+ ([\d.:]+)\] "([^"]+)"(?: "([^"]*)")?/.exec(line);
        if (match === null) continue; // a command run inside a script ('lua') or no command
        const [, from, command, first] = match as unknown as [string, string, string, string | undefined];
        const list = byConnection.get(from) ?? [];
        list.push(`${command.toUpperCase()} ${first ?? ''}`.trim());
        byConnection.set(from, list);
      }
      const adapters = [...byConnection.entries()].filter(([, commands]) => commands.some((c) => c.startsWith('GET rollback') || c.startsWith('EVAL')));
      assert.ok(adapters.length >= 1, `the adapter's connection is in the MONITOR log:\n${log.slice(0, 2000)}`);
      for (const [from, commands] of adapters) {
        const handshake = commands.findIndex((c) => !/^(CLIENT|HELLO|SELECT|AUTH|READONLY)\b/.test(c));
        assert.deepEqual(
          commands.slice(handshake, handshake + 2).sort(),
          [`GET ${prefix}#dataset`, 'INFO server'],
          `connection ${from}: its first commands after the handshake read run_id and the marker: ${commands.slice(0, 8).join(' | ')}`,
        );
      }
    } finally {
      monitor?.kill();
      await shut(instance);
      await relay.close();
      await cleanup();
    }
  });

  it('several instances on one Redis converge: each flushes at most once, and none removes what another wrote after', { skip }, async () => {
    const { redis, store, prefix, cleanup } = await world();
    const instances = await Promise.all([1, 2, 3].map(() => open(redis.url, store, prefix)));
    const [a, b, c] = instances as [Instance, Instance, Instance];
    try {
      await snapshotThenWrite(redis, a.engine);
      assert.equal((await b.engine.readEntry('k')).value, 'v2');
      await redis.restart();
      const reads = await Promise.all(instances.map((instance) => readThroughReturn(instance.engine, 5)));
      for (const { values } of reads) assert.deepEqual([...values], ['v2']);
      const flushes = () => instances.map((instance) => instance.cache.stats().datasetFlushes ?? 0);
      assert.ok(flushes().every((n) => n <= 1), `each instance flushed at most once: ${flushes().join(', ')}`);
      assert.ok(flushes().some((n) => n === 1), 'the rolled-back dataset was flushed');

      // After convergence: a value written by one instance survives every instance reconnecting to
      // the same server process (same run_id: nothing to flush).
      await c.engine.write('k2', 'after');
      assert.equal((await c.engine.readEntry('k2')).source, 'hit');
      const before = flushes();
      await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal'); // every client reconnects
      for (const instance of [a, b]) {
        await until('the instance to answer from the cache again', async () => (await instance.engine.readEntry('k2')).source === 'hit');
        assert.equal((await instance.engine.readEntry('k2')).value, 'after');
      }
      assert.deepEqual(flushes(), before, 'no flush on a reconnection to the same server process');
    } finally {
      await Promise.all(instances.map(shut));
      await cleanup();
    }
  });

  it('records without a marker (written before the guard existed) are removed once; a fresh prefix is not a flush', { skip }, async () => {
    const { redis, store, prefix, cleanup } = await world([]);
    try {
      const fresh = await open(redis.url, store, `${prefix}fresh:`);
      assert.equal(fresh.cache.stats().datasetFlushes, 0);
      assert.deepEqual(fresh.warnings, []);
      await shut(fresh);

      await redis.cli('SET', `${prefix}ns:old`, 'v1:0:"old"');
      await redis.cli('SET', `${prefix}#journal-cursor:j`, '7');
      const upgraded = await open(redis.url, store, prefix);
      try {
        assert.equal(upgraded.cache.stats().datasetFlushes, 1);
        // 4: the record, the cursor, and the marker and journal cursor of the nested prefix `fresh:` (prefixes must not nest).
        assert.match(upgraded.warnings[0] ?? '', /no marker said which process.*4 keys were removed/);
        assert.equal((await redis.cli('EXISTS', `${prefix}ns:old`)).trim(), '0');
        // The marker names the process, and the end of the quarantine the flush started (Redis server time, ms).
        const runId = /run_id:(\w+)/.exec(await redis.cli('INFO', 'server'))?.[1];
        assert.match((await redis.cli('GET', `${prefix}#dataset`)).trim(), new RegExp(`^${runId} \\d{13}$`));
        assert.equal((await redis.cli('EXISTS', `${prefix}fresh:#dataset`)).trim(), '0', 'the nested prefix\'s marker went with the rest');
      } finally {
        await shut(upgraded);
      }
    } finally {
      await cleanup();
    }
  });

  it('a promoted replica that missed the publish does not serve the value it holds', { skip }, async () => {
    const { redis: master, store, prefix, cleanup } = await world(['--repl-diskless-sync-delay', '0']);
    const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(master.port)]);
    const relay = await startStallRelay(master.url); // the address clients use: moves on failover
    const instance = await open(relay.urlFor(master.url), store, prefix);
    try {
      await instance.engine.write('k', 'v1');
      assert.equal((await instance.engine.readEntry('k')).source, 'hit');
      await until('the replica to hold v1', async () => (await replica.cli('GET', `${prefix}ns:k`)).startsWith('v1:0:'));
      // The failover promotes the replica while the old master still takes a write (a partition):
      // the replica misses it, as an asynchronous replica misses what it had not received.
      await replica.cli('REPLICAOF', 'NO', 'ONE');
      await instance.engine.write('k', 'v2');
      assert.equal((await instance.engine.readEntry('k')).source, 'hit');
      await master.kill();
      assert.match(await replica.cli('GET', `${prefix}ns:k`), /^v1:0:/, 'the promoted replica holds v1');
      relay.retarget(replica.url);
      const { values } = await readThroughReturn(instance.engine);
      assert.deepEqual([...values], ['v2']);
      assert.equal(instance.cache.stats().datasetFlushes, 1);
    } finally {
      await shut(instance);
      await relay.close();
      await replica.stop();
      await cleanup();
    }
  });
});
