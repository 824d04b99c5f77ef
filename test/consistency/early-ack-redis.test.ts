// acknowledge 'after-commit' over a real Redis (the memory-cache tests are early-ack.test.ts): the
// Redis adapter holds a completion made after the acknowledgement to the end of its tick
// (src/cache/redis-write-batch.ts). If the completion never arrives — the process exits in that
// tick, or the run carrying it is refused whole — readers that start after the acknowledgement
// bypass the writer's lease and read the store until the lease expires, and then fill from the
// store: never the value the write replaced.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createClient, type RedisClientType } from 'redis';
import { NearCache } from '../../src/cache/near.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createGate } from '../../src/chaos/faults.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { StoreAdapter } from '../../src/types.js';
import { needRedisServer, type RedisServer, startRedisServer, untilUptime } from '../helpers/redis-server.js';

const installed = needRedisServer();
const LEASE = '1500ms';
const LEASE_MS = 1500;

describe("acknowledge 'after-commit' over Redis: completions held, lost or refused, and read-your-writes", { skip: installed.skip }, () => {
  let server: RedisServer;
  let admin: RedisClientType;
  let dir: string;
  const opened: Array<{ close(): Promise<void> }> = [];

  before(async () => {
    server = await startRedisServer(['--lua-time-limit', '50']);
    await untilUptime(server, 2); // older than the quarantine: a first use, not a lost dataset
    admin = createClient({ url: server.url });
    admin.on('error', () => undefined); // the restart below cuts it; it reconnects
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), 'lockstep-early-ack-redis-'));
  });
  // A test restarts the server: a new prefix on a server younger than the quarantine is a lost
  // dataset (quarantined, every read a store fallback), which the tests after it must not meet.
  beforeEach(() => untilUptime(server, 3));
  after(async () => {
    for (const thing of opened.reverse()) await thing.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function instance(prefix: string, store: StoreAdapter, acknowledge: 'after-commit' | 'after-cache' = 'after-cache'): { engine: WriteThrough<string>; cache: RedisCacheAdapter } {
    const cache = createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: LEASE, commandTimeout: '1s' });
    const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', leaseTtl: LEASE, acknowledge, journal: false, metrics: false });
    opened.push(cache, engine);
    return { engine, cache };
  }

  /** Reads until the key's lease is gone (bounded), every read checked; then two more (a fill and a hit). */
  async function readThroughExpiry(engine: WriteThrough<string>, cache: RedisCacheAdapter, key: string, value: string, version: number): Promise<string[]> {
    const sources: string[] = [];
    const until = performance.now() + LEASE_MS * 4;
    for (;;) {
      const read = await engine.readEntry(key);
      assert.deepEqual([read.value, read.version], [value, version], `read #${sources.length} after the acknowledgement (${read.source})`);
      sources.push(read.source);
      const view = await cache.peek(`ns:${key}`);
      if (view?.kind !== 'write' && sources.length > 1 && read.source === 'hit') return sources;
      assert.ok(performance.now() < until, `the lease did not expire within 4 leases: ${JSON.stringify(view)}`);
      await sleep(25);
    }
  }

  it('the writer exits in the tick of its acknowledgement, its completion held and never sent: readers bypass, then fill the acknowledged value', async () => {
    const prefix = `exit-${randomUUID().slice(0, 8)}:`;
    const path = join(dir, 'exit.db');
    const here = instance(prefix, createSqliteStore({ path }));
    await here.engine.write('k', 'old');
    assert.equal((await here.engine.readEntry('k')).source, 'hit', 'the old value is cached');
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'test/helpers/early-ack-exit-worker.ts', JSON.stringify({ url: server.url, prefix, path, key: 'k', value: 'new', leaseTtl: LEASE })],
        { timeout: 30_000 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      );
    });
    const { version, held } = JSON.parse(stdout.trim()) as { version: number; held: number };
    assert.equal(held, 1, 'the completion was held when the process exited');
    assert.equal((await here.cache.peek('ns:k'))?.kind, 'write', 'the lease stays: the completion never arrived');
    const sources = await readThroughExpiry(here.engine, here.cache, 'k', 'new', version);
    assert.equal(sources[0], 'bypass');
    assert.ok(sources.includes('miss'), `a reader filled from the store once the lease expired: ${sources.join(',')}`);
  });

  it("the Redis server's clock steps forward during a write's lease (emulated): the write is acknowledged before its completion, and a read of its own process right after returns the value it replaced", { todo: "after-commit trusts the writer's own clock for the lease, but Redis measures it on its wall clock (TIME); see docs/protocol.md, 'Acknowledging before the cache completion'" }, async () => {
    const prefix = `step-${randomUUID().slice(0, 8)}:`;
    const sqlite = createSqliteStore({ path: join(dir, 'step.db') });
    const store = new ChaosStore(sqlite);
    const writer = instance(prefix, store, 'after-commit');
    const reader = instance(prefix, sqlite);
    await writer.engine.write('k', 'old');
    const commit = createGate();
    store.faults.next('write', { kind: 'pause', when: 'before', gate: commit });
    const write = writer.engine.write('k', 'new');
    await commit.reached; // leased; the commit has not started
    // A forward step of the Redis host's wall clock makes every lease deadline look passed: emulated
    // by moving this lease's deadline (the number Lua compares with TIME) back by the step.
    const full = `${prefix}ns:k`;
    const record = String(await admin.get(full));
    const [seconds, micros] = (await admin.sendCommand(['TIME'])) as [string, string];
    const serverNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const stepped = record.replace(/^(w\{"t":\{"[^"]*":)(\d+)/, (_, head: string) => `${head}${serverNow - 1}`);
    assert.notEqual(stepped, record, `a one-writer record: ${record}`);
    await admin.set(full, stepped);
    // Another instance finds the lease expired, reads the store (the commit has not started) and fills.
    assert.deepEqual(await reader.engine.read('k'), 'old');
    assert.match(String(await admin.get(full)), /^v\d+:0:/, 'the older value was filled');
    commit.release();
    const { version } = await write; // confirmed at once: acknowledged before the completion (its own clock)
    const own = await writer.engine.readEntry('k'); // read-your-writes, in the tick of the acknowledgement
    assert.deepEqual([own.value, own.version, own.source], ['new', version, own.source], 'a read that began after the acknowledgement');
  });

  it('Redis restarts (no persistence) between the lease and the acknowledged commit: the completion fails into the journal, and no reader gets the old value, during the quarantine or after', async () => {
    const prefix = `restart-${randomUUID().slice(0, 8)}:`;
    const sqlite = createSqliteStore({ path: join(dir, 'restart.db') });
    const store = new ChaosStore(sqlite);
    const writer = instance(prefix, store, 'after-commit');
    const reader = instance(prefix, sqlite);
    await writer.engine.write('k', 'old');
    assert.equal((await reader.engine.readEntry('k')).source, 'hit');
    const commit = createGate();
    store.faults.next('write', { kind: 'pause', when: 'after', gate: commit });
    const acknowledgedBefore = writer.engine.counters.cacheFailures;
    const started = performance.now();
    const write = writer.engine.write('k', 'new');
    await commit.reached; // leased, committed, not yet confirmed
    await server.restart(); // the lease is gone with the dataset
    commit.release();
    const { version } = await write;
    // Confirmed within 90 % of the lease: the engine acknowledged before the completion (its rule).
    assert.ok(performance.now() - started < LEASE_MS * 0.9, `the restart took too long for an early acknowledgement (${Math.round(performance.now() - started)} ms)`);
    const sources: string[] = [];
    const until = performance.now() + LEASE_MS * 6;
    while (!sources.includes('hit')) {
      const read = await reader.engine.readEntry('k');
      assert.deepEqual([read.value, read.version], ['new', version], `read #${sources.length} after the acknowledgement (${read.source})`);
      sources.push(read.source);
      assert.ok(performance.now() < until, `no hit within 6 leases: ${sources.join(',')}`);
      await sleep(25);
    }
    assert.ok(writer.engine.counters.cacheFailures > acknowledgedBefore, 'the completion failed (the cache lost the lease)');
    const journaled = await sqlite.readJournal(0, 100);
    assert.equal(journaled.filter((row) => row.namespace === 'ns' && row.key === 'k' && row.version === version).length, 1, 'the failed completion was journaled');
  });

  it('the run carrying the completion is refused whole (BUSY: another client runs a long script): the write is journaled, readers never get the old value', async () => {
    const prefix = `busy-${randomUUID().slice(0, 8)}:`;
    const sqlite = createSqliteStore({ path: join(dir, 'busy.db') });
    const store = new ChaosStore(sqlite);
    const writer = instance(prefix, store, 'after-commit');
    const reader = instance(prefix, sqlite);
    await writer.engine.write('k', 'old');
    assert.equal((await reader.engine.readEntry('k')).source, 'hit');
    // The commit is held until Redis is busy with another client's script, so the completion and
    // the next write's lease, made right after the acknowledgement, meet BUSY.
    const commit = createGate();
    store.faults.next('write', { kind: 'pause', when: 'after', gate: commit });
    const failuresBefore = writer.engine.counters.cacheFailures;
    const write = writer.engine.write('k', 'new');
    await commit.reached;
    const blocker = createClient({ url: server.url });
    await blocker.connect();
    const busy = blocker.sendCommand(['EVAL', 'local t = redis.call("TIME") local i = 0 while true do i = i + 1 end', '0']).catch(() => undefined);
    for (;;) {
      const answer = await admin.ping().catch((error: Error) => error.message);
      if (/BUSY/.test(String(answer))) break;
      await sleep(10);
    }
    commit.release();
    const { version } = await write;
    const next = writer.engine.write('other', 'x').catch((error: unknown) => error);
    await sleep(0);
    // Every read meanwhile: the store (the cache answers BUSY), the acknowledged value.
    for (let i = 0; i < 3; i++) assert.deepEqual(((await reader.engine.readEntry('k')) as { value: string }).value, 'new');
    await next;
    for (;;) {
      if (writer.engine.counters.cacheFailures > failuresBefore) break;
      await sleep(10);
    }
    await admin.sendCommand(['SCRIPT', 'KILL']).catch(() => undefined);
    await busy;
    await blocker.close().catch(() => undefined);
    assert.equal(await sqlite.readJournal(0, 100).then((rows) => rows.filter((row) => row.namespace === 'ns' && row.key === 'k' && row.version === version).length), 1, 'the failed completion was journaled');
    await readThroughExpiry(reader.engine, reader.cache, 'k', 'new', version);
  });

  it('with the near cache in front: each write read back in the tick of its acknowledgement, and after it, by the writing engine and another on the same near cache, gets what was written', async () => {
    const prefix = `near-${randomUUID().slice(0, 8)}:`;
    const sqlite = createSqliteStore({ path: join(dir, 'near.db') });
    // A bound of an hour: only invalidations (and this process's own drops) remove a copy.
    const near = new NearCache({ redis: createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: LEASE }), feed: createTrackingFeed({ url: server.url, keyPrefix: prefix }), maxStaleness: '1h', maxEntries: 100 });
    await near.start();
    opened.push(near);
    const writer = createWriteThrough<string>({ store: sqlite, cache: near, namespace: 'ns', leaseTtl: LEASE, acknowledge: 'after-commit', journal: false, metrics: false });
    const other = createWriteThrough<string>({ store: sqlite, cache: near, namespace: 'ns', leaseTtl: LEASE, journal: false, metrics: false });
    opened.push(writer, other);
    for (let i = 0; i < 40; i++) {
      const key = `k${i % 3}`;
      const value = `v${i}`;
      const { version } = await writer.write(key, value);
      // In the tick of the acknowledgement (the completion is held) and right after it lands.
      const [own, theirs] = await Promise.all([writer.readEntry(key), other.readEntry(key)]);
      assert.deepEqual([own.value, own.version, theirs.value, theirs.version], [value, version, value, version], `write ${i}`);
      await new Promise((resolve) => setImmediate(resolve));
      for (let r = 0; r < 3; r++) assert.equal(await other.read(key), value, `write ${i}, read ${r} after the completion`);
    }
    assert.ok(near.nearStats().hits > 0, 'the near cache served copies in between');
  });
});
