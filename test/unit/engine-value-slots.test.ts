// A repeated memory hit reads the key's value slot (CacheAdapter.slot) instead of looking the key up
// again. What must hold: the slot answers only while it holds the key's current value; a write, a
// write by another engine on the same cache, a version-fenced invalidation, expiry and eviction all
// send the next read back to the cache's own get (and from there to the store when the value is gone),
// and the slot of a value evicted or replaced lets that value go.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createManualClock } from '../../src/clock.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

async function fixture(maxEntries = 100) {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-slots-'));
  const clock = createManualClock(1_000);
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  const cache = createMemoryCache({ maxEntries, clock });
  const options = { store, cache, clock, namespace: 'slots', ttl: 60_000, journal: false as const, metrics: false as const };
  const a = createWriteThrough<string>(options);
  const b = createWriteThrough<string>(options);
  return {
    a,
    b,
    cache,
    clock,
    async close() {
      await a.close();
      await b.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('engine: value slots of the memory cache', () => {
  it('the memory cache hands out a slot only for a live value, and the slot dies with the value', async () => {
    const f = await fixture();
    try {
      assert.equal(f.cache.slot!('slots:k'), undefined);
      await f.a.write('k', 'v1');
      const slot = f.cache.slot!('slots:k');
      assert.equal(slot?.read()?.payload, 'v1');
      await f.cache.beginWrite('slots:k', 'w', 1_000);
      assert.equal(slot!.read(), undefined, 'a write lease replaces the value: the slot is empty');
    } finally {
      await f.close();
    }
  });

  it('a write after a slot hit: the next read answers the new value', async () => {
    const f = await fixture();
    try {
      await f.a.write('k', 'v1');
      assert.equal(await f.a.read('k'), 'v1');
      assert.equal(await f.a.read('k'), 'v1'); // through the slot
      await f.a.write('k', 'v2');
      assert.equal(await f.a.read('k'), 'v2');
      assert.equal(await f.a.read('k'), 'v2');
    } finally {
      await f.close();
    }
  });

  it('a write by another engine on the same cache: the slot holder reads the new value', async () => {
    const f = await fixture();
    try {
      await f.a.write('k', 'v1');
      assert.equal(await f.a.read('k'), 'v1');
      assert.equal(await f.a.read('k'), 'v1');
      await f.b.write('k', 'v2');
      assert.equal(await f.a.read('k'), 'v2');
      await f.b.delete('k');
      assert.equal(await f.a.read('k'), undefined);
      assert.equal((await f.a.readEntry('k')).found, false);
    } finally {
      await f.close();
    }
  });

  it('a version-fenced invalidation empties the slot: the next read fills from the store', async () => {
    const f = await fixture();
    try {
      await f.a.write('k', 'v1');
      assert.equal(await f.a.read('k'), 'v1');
      const misses = f.a.counters.cacheMisses;
      await f.cache.invalidateOlder('slots:k', 99);
      assert.equal(await f.a.read('k'), 'v1');
      assert.equal(f.a.counters.cacheMisses, misses + 1, 'the read after the invalidation missed');
    } finally {
      await f.close();
    }
  });

  it('an expired value is not served through its slot', async () => {
    const f = await fixture();
    try {
      await f.a.write('k', 'v1');
      assert.equal(await f.a.read('k'), 'v1');
      f.clock.advance(60_001);
      const misses = f.a.counters.cacheMisses;
      assert.equal(await f.a.read('k'), 'v1');
      assert.equal(f.a.counters.cacheMisses, misses + 1, 'the read after expiry missed');
    } finally {
      await f.close();
    }
  });

  it('a value evicted for space is not served through its slot, and a slot hit counts as a use', async () => {
    const f = await fixture(2);
    try {
      await f.a.write('a', 'A');
      await f.a.write('b', 'B');
      assert.equal(await f.a.read('a'), 'A');
      assert.equal(await f.a.read('a'), 'A'); // a slot hit: a is now the most recently used
      await f.a.write('c', 'C'); // evicts b, the least recently used
      assert.equal(f.cache.slot!('slots:b'), undefined, 'b evicted');
      assert.equal(f.cache.slot!('slots:a')?.read()?.payload, 'A', 'a kept');
      await f.a.write('d', 'D'); // evicts c (a was just used)
      const misses = f.a.counters.cacheMisses;
      assert.equal(await f.a.read('c'), 'C');
      assert.equal(f.a.counters.cacheMisses, misses + 1, 'c was evicted');
    } finally {
      await f.close();
    }
  });
});

describe('engine: a cold read whose payload the codec cannot read', () => {
  it('fails the read and ends its in-process flight: the next read of the key does not join a dead one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-decode-'));
    const store = createSqliteStore({ path: join(dir, 'store.db') });
    let refuse = true;
    const codec = {
      encode: (value: unknown) => JSON.stringify(value),
      decode: (payload: string) => {
        if (refuse) throw new Error('unreadable payload');
        return JSON.parse(payload) as unknown;
      },
    };
    const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 10, decodedValues: false }), namespace: 'decode', codec, journal: false, metrics: false });
    try {
      await store.write('decode', 'k', JSON.stringify('v1'), { journal: false, deadlineMs: 1_000 });
      await assert.rejects(engine.read('k'), /unreadable payload/);
      const flights = (engine as unknown as { ctx: { flights: Map<string, unknown> } }).ctx.flights;
      assert.equal(flights.size, 0, 'the failed flight is forgotten');
      refuse = false;
      assert.equal(await engine.read('k'), 'v1');
    } finally {
      await engine.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
