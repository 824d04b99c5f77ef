// Fill waiters (docs/protocol.md, "Fill waiters"): a reader that finds another instance's fill
// lease waits for its value instead of reading the store. Two engines over one cache stand for two
// instances (each has its own in-process flights). On the memory cache and on Redis: a write that
// voids the lease while readers wait makes every waiter answer the written value (none takes the
// value the lease holder read), and a lease holder that never fills costs its waiters `fillWait`,
// not the lease's lifetime.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { createClient } from 'redis';
import { createRedisCache } from '../../src/cache/redis.js';
import { createGate } from '../../src/chaos/faults.js';
import type { ReadEntry } from '../../src/engine/api.js';
import type { CacheAdapter } from '../../src/types.js';
import { createEngineFixture, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';
import { needService, REDIS_URL } from '../helpers/services.js';

const redis = await needService('Redis', REDIS_URL);
const READERS = 8;

/** Waits for a condition (the machine may be loaded: no fixed sleeps). */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Starts a read and records when it settled and what it answered. */
function tracked(read: Promise<ReadEntry<string>>) {
  const state: { entry?: ReadEntry<string>; settledAt?: number; error?: unknown } = {};
  const done = read.then(
    (entry) => {
      state.entry = entry;
      state.settledAt = performance.now();
    },
    (error: unknown) => {
      state.error = error;
      state.settledAt = performance.now();
    },
  );
  return { state, done };
}

/** The cache of a test besides the fixture's memory cache, closed after the test (its connection would keep the process alive). */
let closeCache: (() => Promise<void>) | undefined;
const caches: Array<{ name: string; skip: string | boolean; wrap?: () => (memory: CacheAdapter) => CacheAdapter }> = [
  { name: 'memory cache', skip: false },
  {
    name: 'Redis cache',
    skip: redis.skip,
    wrap: () => {
      const keyPrefix = `lockstep-fill-wait-${randomBytes(4).toString('hex')}:`;
      const cache = createRedisCache({ url: REDIS_URL, keyPrefix });
      closeCache = async () => {
        await cache.close();
        const client = createClient({ url: REDIS_URL });
        await client.connect();
        for await (const keys of client.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 1000 })) if (keys.length > 0) await client.unlink(keys);
        await client.close();
      };
      return () => cache;
    },
  },
];

let f: EngineFixture<string> | undefined;
afterEach(async () => {
  await f?.close();
  f = undefined;
  await closeCache?.();
  closeCache = undefined;
});

for (const { name, skip, wrap } of caches) {
  describe(`fill waiters on the ${name}`, { skip }, () => {
    it('a write that voids the lease while readers wait: every waiter answers the written value, none the lease holder\'s', async () => {
      const wrapCache = wrap?.();
      f = await createEngineFixture<string>(wrapCache === undefined ? {} : { wrapCache });
      const fixture = f;
      await fixture.sqlite.write('test', 'k', '"one"', { journal: false, deadlineMs: 1000 });
      // The lease holder (instance A) reads "one" from the store, then stalls before filling.
      const holderRead = createGate();
      fixture.store.faults.next('read', { kind: 'pause', when: 'after', gate: holderRead });
      const holder = tracked(fixture.engine.readEntry('k'));
      await holderRead.reached;
      // Readers on A join the holder's flight; readers on B (another instance) wait for the fill.
      const b = fixture.another({ fillWait: LEASE_MS - 1000 });
      const onA = Array.from({ length: READERS }, () => tracked(fixture.engine.readEntry('k')));
      const onB = Array.from({ length: READERS }, () => tracked(b.readEntry('k')));
      await until(() => b.counters.fillWaits === 1, 'instance B to wait for the fill');
      assert.ok([...onA, ...onB].every((r) => r.state.settledAt === undefined), 'nobody answered while the fill was pending');
      // A writer (instance C) voids the lease and commits "two"; its completion is held back, so the
      // record stays a write lease: B's waiters must leave the wait and read the store (bypass).
      const completion = createGate();
      fixture.cache.faults.next('completeWrite', { kind: 'pause', when: 'before', gate: completion });
      const write = fixture.another().write('k', 'two');
      await completion.reached;
      completion.release();
      const { version } = await write;
      const ackedAt = performance.now();
      // Now the holder fills "one" (rejected: its lease was voided) and A's joiners ask the cache.
      holderRead.release();
      await Promise.all([holder.done, ...onA.map((r) => r.done), ...onB.map((r) => r.done)]);
      assert.equal(holder.state.entry?.value, 'one', 'the holder read before the write: concurrent, linearizable');
      for (const [who, reads] of [['A', onA], ['B', onB]] as const) {
        for (const r of reads) {
          assert.equal(r.state.error, undefined);
          assert.deepEqual([r.state.entry?.value, r.state.entry?.version], ['two', version], `a waiter on ${who} answered the written value`);
        }
      }
      assert.ok(onA.every((r) => r.state.settledAt! >= ackedAt), 'A\'s joiners answered after the acknowledgement');
      assert.equal(fixture.engine.counters.fillsRejected, 1, 'the voided fill was rejected');
      assert.deepEqual([b.counters.fillWaits, b.counters.fillWaitTimeouts], [1, 0], 'one wait on B for all its readers, not timed out');
      assert.deepEqual(await b.readEntry('k'), { found: true, value: 'two', version, source: 'hit' });
    });

    it('the lease holder never fills: its waiters read the store after fillWait, not after the lease', async () => {
      const wrapCache = wrap?.();
      f = await createEngineFixture<string>(wrapCache === undefined ? {} : { wrapCache });
      const fixture = f;
      await fixture.sqlite.write('test', 'k', '"one"', { journal: false, deadlineMs: 1000 });
      const stalled = createGate(); // the holder's store read never returns (released at the end, for cleanup)
      fixture.store.faults.next('read', { kind: 'pause', when: 'before', gate: stalled });
      const holder = fixture.engine.readEntry('k').catch(() => undefined);
      await stalled.reached;
      const b = fixture.another({ fillWait: 200 });
      const started = performance.now();
      const reads = await Promise.all(Array.from({ length: READERS }, () => b.readEntry('k')));
      const elapsed = performance.now() - started;
      for (const entry of reads) assert.deepEqual([entry.found, entry.value, entry.source], [true, 'one', 'miss']);
      assert.deepEqual([b.counters.fillWaits, b.counters.fillWaitTimeouts], [1, 1], 'one wait, timed out');
      assert.ok(elapsed >= 190, `the readers waited for the fill first (${elapsed.toFixed(0)} ms)`);
      assert.ok(elapsed < LEASE_MS / 2, `the wait was bounded by fillWait, not the lease (${elapsed.toFixed(0)} ms)`);
      // While that lease lives, this instance does not wait on the key again.
      const again = performance.now();
      assert.equal(await b.read('k'), 'one');
      assert.equal(b.counters.fillWaits, 1, 'no second wait on a lease it gave up on');
      assert.ok(performance.now() - again < 190, 'the second read went to the store at once');
      stalled.release();
      await holder;
    });

    it('fillWait 0 reads the store at once (the old behaviour)', async () => {
      const wrapCache = wrap?.();
      f = await createEngineFixture<string>(wrapCache === undefined ? {} : { wrapCache });
      const fixture = f;
      await fixture.sqlite.write('test', 'k', '"one"', { journal: false, deadlineMs: 1000 });
      const stalled = createGate();
      fixture.store.faults.next('read', { kind: 'pause', when: 'before', gate: stalled });
      const holder = fixture.engine.readEntry('k');
      await stalled.reached;
      const b = fixture.another({ fillWait: 0 });
      assert.deepEqual((await b.readEntry('k')).source, 'miss');
      assert.equal(b.counters.fillWaits, 0);
      stalled.release();
      assert.equal((await holder).value, 'one');
    });
  });
}

describe('the fillWait option', () => {
  it('refuses a wait longer than the lease', async () => {
    f = await createEngineFixture<string>();
    assert.throws(() => f!.another({ fillWait: LEASE_MS + 1 }), /fillWait \(5001 ms\) must be at most leaseTtl \(5000 ms\)/);
    assert.throws(() => f!.another({ fillWait: -1 }), /fillWait must be a non-negative duration/);
    // The default (100 ms) gives way to a shorter lease instead of refusing it.
    assert.doesNotThrow(() => f!.another({ leaseTtl: 50, tombstoneTtl: 50 }));
  });
});
