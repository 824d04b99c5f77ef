// The memory adapter: the shared conformance suite on a manual clock (strings and decoded values),
// plus what is its own: bounds by entries and bytes with LRU eviction, leases kept out of the
// LRU's reach, option validation and the decoded-values capability.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryCache, type MemoryCacheOptions } from '../../src/cache/memory.js';
import { createManualClock } from '../../src/clock.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { CacheAdapter, CacheEntry, LeaseToken, Version } from '../../src/types.js';
import { runCacheAdapterSuite, stringEntry, tombstoneEntry } from '../conformance/cache-adapter.suite.js';

for (const decodedValues of [false, true]) {
  runCacheAdapterSuite(`memory (decodedValues: ${decodedValues})`, async () => {
    const clock = createManualClock();
    const cache = createMemoryCache({ maxEntries: 1000, clock, decodedValues });
    return {
      cache,
      advance: async (ms) => clock.advance(ms),
      close: async () => {
        await cache.close();
      },
    };
  });
}

const LEASE = 1000;
const TTL = 60_000;

async function missToken(cache: CacheAdapter, key: string): Promise<LeaseToken> {
  const got = await cache.get(key, LEASE);
  assert.equal(got.kind, 'miss', `get(${key}): ${JSON.stringify(got)}`);
  assert.equal(typeof got.token, 'string', `get(${key}) grants the fill lease: ${JSON.stringify(got)}`);
  return got.token as LeaseToken;
}

async function put(cache: CacheAdapter, key: string, entry: CacheEntry): Promise<void> {
  const token = await missToken(cache, key);
  assert.equal(await cache.fill(key, token, entry, TTL), true, `fill(${key}) accepted`);
}

async function isValue(cache: CacheAdapter, key: string, version?: Version): Promise<boolean> {
  const view = await cache.peek(key);
  if (view?.kind !== 'value') return false;
  if (version !== undefined) assert.equal(view.version, version, `version of ${key}`);
  return true;
}

async function valueCount(cache: CacheAdapter, keys: readonly string[]): Promise<number> {
  let n = 0;
  for (const key of new Set(keys)) if (await isValue(cache, key)) n++;
  return n;
}

const range = (n: number, name: string): string[] => Array.from({ length: n }, (_, i) => `${name}${i}`);

function options(extra: Partial<MemoryCacheOptions>): MemoryCacheOptions {
  return { clock: createManualClock(), ...extra } as MemoryCacheOptions;
}

describe('memory cache: bounded by entries (LRU)', () => {
  it('inserting more values than maxEntries evicts the least recently inserted (C → B: next get is a miss with token)', async () => {
    const cache = createMemoryCache(options({ maxEntries: 3 }));
    for (const [i, key] of ['a', 'b', 'c', 'd'].entries()) await put(cache, key, stringEntry(i + 1, key));
    assert.equal(await isValue(cache, 'a'), false, 'a evicted');
    await missToken(cache, 'a');
    for (const key of ['b', 'c', 'd']) assert.equal(await isValue(cache, key), true, `${key} kept`);
  });

  it('a get counts as a use: the least recently used value is evicted, not the oldest', async () => {
    const cache = createMemoryCache(options({ maxEntries: 3 }));
    for (const [i, key] of ['a', 'b', 'c'].entries()) await put(cache, key, stringEntry(i + 1, key));
    const hit = await cache.get('a', LEASE);
    assert.equal(hit.kind, 'value');
    await put(cache, 'd', stringEntry(4, 'd'));
    assert.equal(await isValue(cache, 'b'), false, 'b (least recently used) evicted');
    for (const key of ['a', 'c', 'd']) assert.equal(await isValue(cache, key), true, `${key} kept`);
    await missToken(cache, 'b');
  });

  it('published values count against maxEntries too', async () => {
    const cache = createMemoryCache(options({ maxEntries: 2 }));
    for (const [i, key] of ['a', 'b', 'c'].entries()) {
      await cache.beginWrite(key, `w-${key}`, LEASE);
      assert.equal(await cache.completeWrite(key, `w-${key}`, stringEntry(i + 1, key), TTL), 'published');
    }
    assert.equal(await valueCount(cache, ['a', 'b', 'c']), 2);
    assert.equal(await isValue(cache, 'a'), false, 'a evicted');
  });
});

describe('memory cache: bounded by bytes (maxBytes, CacheEntry.sizeBytes)', () => {
  const sized = (version: Version, sizeBytes: number): CacheEntry => ({ version, payload: 'x', tombstone: false, sizeBytes });

  it('values are evicted once the sum of sizeBytes passes maxBytes', async () => {
    const cache = createMemoryCache(options({ maxBytes: 100 }));
    await put(cache, 'a', sized(1, 40));
    await put(cache, 'b', sized(2, 40));
    assert.equal(await valueCount(cache, ['a', 'b']), 2, '80 bytes fit in 100');
    await put(cache, 'c', sized(3, 40));
    assert.equal(await isValue(cache, 'a'), false, 'a evicted at 120 bytes');
    assert.equal(await isValue(cache, 'b'), true);
    assert.equal(await isValue(cache, 'c'), true);
  });

  it('many small values fit where one large value would evict them', async () => {
    const cache = createMemoryCache(options({ maxBytes: 100 }));
    const keys = range(10, 's');
    for (const [i, key] of keys.entries()) await put(cache, key, sized(i + 1, 10));
    assert.equal(await valueCount(cache, keys), 10, '10 × 10 bytes fit in 100');
    await put(cache, 'big', sized(99, 55));
    assert.equal(await isValue(cache, 'big'), true);
    assert.equal(await valueCount(cache, keys), 4, 'enough small values evicted to make room for 55 bytes');
  });

  it('a tombstone (sizeBytes 0) can be published in a byte-bounded cache', async () => {
    const cache = createMemoryCache(options({ maxBytes: 100 }));
    await cache.beginWrite('gone', 'w', LEASE);
    assert.equal(await cache.completeWrite('gone', 'w', tombstoneEntry(2), TTL), 'published');
    const got = await cache.get('gone', LEASE);
    assert.equal(got.kind, 'value', JSON.stringify(got));
    assert.equal(got.tombstone, true);
    const token = await missToken(cache, 'gone-too');
    assert.equal(await cache.fill('gone-too', token, tombstoneEntry(3), TTL), true);
    assert.equal(await isValue(cache, 'gone-too', 3), true);
  });

  it('maxEntries and maxBytes together: whichever bound is reached first evicts', async () => {
    const cache = createMemoryCache(options({ maxEntries: 3, maxBytes: 1000 }));
    const keys = range(4, 'e');
    for (const [i, key] of keys.entries()) await put(cache, key, sized(i + 1, 10));
    assert.equal(await valueCount(cache, keys), 3, 'bounded by entries');
    const cache2 = createMemoryCache(options({ maxEntries: 100, maxBytes: 50 }));
    const keys2 = range(4, 'f');
    for (const [i, key] of keys2.entries()) await put(cache2, key, sized(i + 1, 20));
    assert.equal(await valueCount(cache2, keys2), 2, 'bounded by bytes');
  });
});

describe('memory cache: leases are never evicted for space', () => {
  const MAX = 5;
  const N = 50;

  it(`maxEntries + ${N} fill leases while the LRU is full of values: every lease survives, values still evict`, async () => {
    const cache = createMemoryCache(options({ maxEntries: MAX }));
    const values = range(MAX, 'v');
    for (const [i, key] of values.entries()) await put(cache, key, stringEntry(i + 1, key));
    const leased = range(MAX + N, 'fill');
    const tokens = new Map<string, LeaseToken>();
    for (const key of leased) tokens.set(key, await missToken(cache, key));
    for (const key of leased) {
      assert.equal((await cache.peek(key))?.kind, 'fill', `${key} is still a fill lease`);
      const again = await cache.get(key, LEASE);
      assert.deepEqual({ kind: again.kind, token: again.kind === 'miss' ? again.token : 'n/a' }, { kind: 'miss', token: undefined }, `${key}: its lease is live`);
    }
    for (const [i, key] of leased.entries()) {
      assert.equal(await cache.fill(key, tokens.get(key) as LeaseToken, stringEntry(i + 1, key), TTL), true, `fill(${key}) accepted`);
    }
    assert.ok((await valueCount(cache, [...values, ...leased])) <= MAX, 'values are still bounded by maxEntries');
    for (const key of leased.slice(-MAX)) assert.equal(await isValue(cache, key), true, `${key} (most recent) kept`);
  });

  it(`maxEntries + ${N} write leases while the LRU is full of values: every lease survives, values still evict`, async () => {
    const cache = createMemoryCache(options({ maxEntries: MAX }));
    const values = range(MAX, 'v');
    for (const [i, key] of values.entries()) await put(cache, key, stringEntry(i + 1, key));
    // write leases on fresh keys and on a key that currently holds a value
    const leased = [...range(MAX + N, 'write'), values[0] as string];
    for (const key of leased) await cache.beginWrite(key, `w-${key}`, LEASE);
    // churn the LRU with more values than it holds
    const churn = range(MAX * 3, 'churn');
    for (const [i, key] of churn.entries()) await put(cache, key, stringEntry(i + 1, key));
    assert.ok((await valueCount(cache, [...values, ...churn])) <= MAX, 'values are still bounded by maxEntries');
    for (const key of leased) {
      const got = await cache.get(key, LEASE);
      assert.equal(got.kind, 'bypass', `${key}: write lease survived, got ${JSON.stringify(got)}`);
    }
    for (const [i, key] of leased.entries()) {
      assert.equal(await cache.completeWrite(key, `w-${key}`, stringEntry(100 + i, key), TTL), 'published', `completeWrite(${key})`);
    }
    assert.ok((await valueCount(cache, [...values, ...churn, ...leased])) <= MAX, 'published values are bounded too');
  });

  it('a byte-bounded cache keeps its leases too', async () => {
    const cache = createMemoryCache(options({ maxBytes: 50 }));
    const leased = range(20, 'wb');
    for (const key of leased) await cache.beginWrite(key, `w-${key}`, LEASE);
    for (const [i, key] of range(20, 'vb').entries()) await put(cache, key, { version: i + 1, payload: 'x', tombstone: false, sizeBytes: 10 });
    for (const key of leased) assert.equal((await cache.get(key, LEASE)).kind, 'bypass', `${key} still leased`);
  });
});

describe('memory cache: TTL on the injected clock', () => {
  // The conformance suite's manual clock starts at 0; a clock is any monotonic time line, so a
  // value stored while it reads 0 must expire like any other.
  for (const startMs of [0, 1, 1_000_000]) {
    it(`a value stored while the clock reads ${startMs} expires after its ttl (peek: expiresAt = wall time + ttl, epoch ms)`, async () => {
      const clock = createManualClock(startMs);
      const cache = createMemoryCache({ maxEntries: 10, clock });
      const token = await missToken(cache, 'k');
      assert.equal(await cache.fill('k', token, stringEntry(1, 'one'), 400), true);
      const view = await cache.peek('k');
      assert.equal(view?.kind, 'value');
      // Epoch ms whatever the injected clock reads, as the Redis adapter reports it (issue 11, point 9).
      assert.ok(Math.abs(view.expiresAt - (Date.now() + 400)) < 1_000, `expiresAt ${view.expiresAt} is about Date.now() + 400`);
      clock.advance(399);
      assert.equal((await cache.get('k', LEASE)).kind, 'value', 'still live 1 ms before expiry');
      clock.advance(2); // the exact boundary is not specified (Redis also serves a key at its expiry ms)
      const got = await cache.get('k', LEASE);
      assert.equal(got.kind, 'miss', `expired after ${startMs} + 400: ${JSON.stringify(got)}`);
    });
  }
});

describe('memory cache: options', () => {
  const rejects = (opts: unknown, why: string): void => {
    assert.throws(
      () => createMemoryCache(opts as MemoryCacheOptions),
      (error: unknown) => error instanceof InvalidOptionError && error.code === 'E_INVALID_OPTION',
      why,
    );
  };

  it('neither maxEntries nor maxBytes → throws InvalidOptionError (no unbounded cache)', () => {
    rejects({}, 'empty options');
    rejects({ clock: createManualClock() }, 'only a clock');
    rejects({ maxEntries: undefined, maxBytes: undefined }, 'both undefined');
  });

  it('a negative maxEntries or maxBytes → throws InvalidOptionError', () => {
    rejects({ maxEntries: -1 }, 'maxEntries -1');
    rejects({ maxBytes: -100 }, 'maxBytes -100');
    rejects({ maxEntries: 10, maxBytes: -1 }, 'valid maxEntries, negative maxBytes');
    rejects({ maxEntries: -1, maxBytes: 10 }, 'negative maxEntries, valid maxBytes');
  });

  it('zero, fractional or non-numeric bounds → throw InvalidOptionError', () => {
    rejects({ maxEntries: 0 }, 'maxEntries 0');
    rejects({ maxBytes: 0 }, 'maxBytes 0');
    rejects({ maxEntries: 1.5 }, 'maxEntries 1.5');
    rejects({ maxEntries: Number.NaN }, 'maxEntries NaN');
    rejects({ maxEntries: Number.POSITIVE_INFINITY }, 'maxEntries Infinity');
    rejects({ maxBytes: '100' }, 'maxBytes as a string');
  });

  it('capabilities.decodedValues reflects the option (documented default: true)', () => {
    assert.equal(createMemoryCache({ maxEntries: 10, decodedValues: false }).capabilities.decodedValues, false);
    assert.equal(createMemoryCache({ maxEntries: 10, decodedValues: true }).capabilities.decodedValues, true);
    assert.equal(createMemoryCache({ maxEntries: 10 }).capabilities.decodedValues, true);
  });
});

describe('memory cache: decoded values', () => {
  it('a published frozen object comes back as the same object (completeWrite and fill)', async () => {
    const cache = createMemoryCache({ maxEntries: 10, clock: createManualClock(), decodedValues: true });
    const written = Object.freeze({ id: 1, tags: Object.freeze(['a', 'b']) });
    await cache.beginWrite('obj', 'w', LEASE);
    assert.equal(await cache.completeWrite('obj', 'w', { version: 1, payload: written, tombstone: false, sizeBytes: 20 }, TTL), 'published');
    const hit = await cache.get('obj', LEASE);
    assert.equal(hit.kind, 'value');
    assert.equal(hit.payload, written, 'the same object, not a copy');

    const filled = Object.freeze({ id: 2 });
    const token = await missToken(cache, 'obj2');
    assert.equal(await cache.fill('obj2', token, { version: 1, payload: filled, tombstone: false, sizeBytes: 8 }, TTL), true);
    const hit2 = await cache.get('obj2', LEASE);
    assert.equal(hit2.kind, 'value');
    assert.equal(hit2.payload, filled, 'the same object, not a copy');
  });

  it('the highest version of out-of-order completions is published with its own object', async () => {
    const cache = createMemoryCache({ maxEntries: 10, clock: createManualClock(), decodedValues: true });
    const v1 = Object.freeze({ v: 1 });
    const v2 = Object.freeze({ v: 2 });
    await cache.beginWrite('k', 'w1', LEASE);
    await cache.beginWrite('k', 'w2', LEASE);
    assert.equal(await cache.completeWrite('k', 'w2', { version: 2, payload: v2, tombstone: false, sizeBytes: 7 }, TTL), 'pending');
    assert.equal(await cache.completeWrite('k', 'w1', { version: 1, payload: v1, tombstone: false, sizeBytes: 7 }, TTL), 'published');
    const hit = await cache.get('k', LEASE);
    assert.equal(hit.kind, 'value');
    assert.equal(hit.version, 2);
    assert.equal(hit.payload, v2);
  });
});

describe('memory cache: in-process answers', () => {
  it('get answers synchronously (a hit costs no promise)', async () => {
    const cache = createMemoryCache({ maxEntries: 10, clock: createManualClock() });
    await put(cache, 'k', stringEntry(1, 'one'));
    const hit = cache.get('k', LEASE);
    assert.equal(typeof (hit as { then?: unknown }).then, 'undefined', 'not a promise');
    assert.equal((hit as { kind: string }).kind, 'value');
  });
});
