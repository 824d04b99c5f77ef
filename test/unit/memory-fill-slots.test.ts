// The memory cache keeps a key's fill lease in the slot its value will take (memory-values.ts): the
// fill turns that slot into the value in place. What must hold besides the conformance suite: a fill
// lease is never a value (no hit, no slot for the engine, not counted against maxEntries, never
// evicted), expired fill leases are swept, a fill too large for maxBytes ends the lease and stores
// nothing, and a scan that the caller interleaves with changes never reports a filled or dropped
// lease, nor drops what the key holds since.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createManualClock } from '../../src/clock.js';
import type { CacheAdapter, CacheEntry, CacheRecordView, LeaseToken } from '../../src/types.js';

const LEASE = 1000;
const entry = (version: number, payload = `v${version}`): CacheEntry => ({ version, payload, tombstone: false, sizeBytes: payload.length });

function missToken(cache: CacheAdapter, key: string): LeaseToken {
  const got = cache.get(key, LEASE) as { kind: string; token?: LeaseToken };
  assert.equal(got.kind, 'miss', `get(${key}): ${JSON.stringify(got)}`);
  assert.equal(typeof got.token, 'string', `get(${key}) grants the fill lease`);
  return got.token!;
}

const sizeOf = (cache: CacheAdapter) => (cache as unknown as { size: { values: number; leases: number } }).size;

describe('memory cache: fill leases in value slots', () => {
  it('a fill lease is not a value: no hit, no slot, the cache is not empty; the fill makes it one', () => {
    const cache = createMemoryCache({ maxEntries: 10, clock: createManualClock() });
    const token = missToken(cache, 'k');
    assert.deepEqual(cache.get('k', LEASE), { kind: 'miss', token: undefined }, 'another reader: miss without token');
    assert.equal(cache.slot!('k'), undefined, 'no slot for the engine while the key holds a fill lease');
    assert.equal(cache.isEmpty!(), false);
    assert.deepEqual(sizeOf(cache), { values: 0, leases: 1 });
    assert.equal(cache.fill('k', token, entry(3), 0), true);
    assert.deepEqual(sizeOf(cache), { values: 1, leases: 0 });
    assert.equal(cache.slot!('k')?.read()?.version, 3);
    assert.equal(cache.fill('k', token, entry(4), 0), false, 'the lease ended with its fill');
  });

  it('fill leases do not count against maxEntries; a fill that lands evicts the least recently used value', () => {
    const cache = createMemoryCache({ maxEntries: 2, clock: createManualClock() });
    for (const key of ['a', 'b']) assert.equal(cache.fill(key, missToken(cache, key), entry(1), 0), true);
    const tokens = ['c', 'd', 'e'].map((key) => missToken(cache, key));
    assert.deepEqual(sizeOf(cache), { values: 2, leases: 3 }, 'three leases beside a full LRU: nothing evicted');
    assert.equal((cache.get('a', LEASE) as { kind: string }).kind, 'value');
    assert.equal(cache.fill('c', tokens[0]!, entry(1), 0), true);
    assert.equal(cache.peek('b'), undefined, 'b (least recently used) evicted');
    assert.equal((cache.peek('a') as CacheRecordView | undefined)?.kind, 'value');
    assert.equal((cache.peek('d') as CacheRecordView | undefined)?.kind, 'fill', 'the other leases are kept');
    assert.deepEqual(sizeOf(cache), { values: 2, leases: 2 });
  });

  it('a fill larger than maxBytes ends the lease and stores nothing', () => {
    const cache = createMemoryCache({ maxBytes: 4, clock: createManualClock() });
    const token = missToken(cache, 'k');
    assert.equal(cache.fill('k', token, entry(1, 'too large'), 0), true);
    assert.equal(cache.peek('k'), undefined);
    assert.deepEqual(sizeOf(cache), { values: 0, leases: 0 });
    assert.equal(cache.isEmpty!(), true);
    missToken(cache, 'k'); // the next reader is the filler again
  });

  it('a write voids the fill lease: the fill is rejected, the write publishes', () => {
    const cache = createMemoryCache({ maxEntries: 10, clock: createManualClock() });
    const token = missToken(cache, 'k');
    cache.beginWrite('k', 'w1', LEASE);
    assert.deepEqual(sizeOf(cache), { values: 0, leases: 1 }, 'the write lease replaced the fill lease');
    assert.equal(cache.fill('k', token, entry(1), 0), false);
    assert.equal(cache.completeWrite('k', 'w1', entry(2), 0), 'published');
    assert.equal((cache.peek('k') as CacheRecordView | undefined)?.kind, 'value');
  });

  it('expired fill leases are swept after enough new leases, and counted', () => {
    const clock = createManualClock();
    const cache = createMemoryCache({ maxEntries: 10_000, clock });
    missToken(cache, 'stale');
    clock.advance(LEASE);
    assert.equal(cache.stats().leasesExpired, 0);
    const tokens = Array.from({ length: 1024 }, (_, i) => [`k${i}`, missToken(cache, `k${i}`)] as const);
    assert.equal(cache.stats().leasesExpired, 1, 'the sweep dropped the expired lease without its key being touched');
    for (const [key, token] of tokens) assert.equal(cache.fill(key, token, entry(1), 0), true);
    assert.deepEqual(sizeOf(cache), { values: 1024, leases: 0 });
    assert.equal(cache.fill('stale', 'anything', entry(1), 0), false);
  });

  it('an expired fill lease is not filled, and the next reader gets a new one', () => {
    const clock = createManualClock();
    const cache = createMemoryCache({ maxEntries: 10, clock });
    const token = missToken(cache, 'k');
    clock.advance(LEASE);
    assert.equal(cache.fill('k', token, entry(1), 0), false);
    assert.equal(cache.stats().leasesExpired, 1);
    const next = missToken(cache, 'k');
    assert.notEqual(next, token);
    assert.equal(cache.fill('k', next, entry(1), 0), true);
  });

  it('a scan interleaved with fills and writes reports only what each key holds when it is reached', async () => {
    const cache = createMemoryCache({ maxEntries: 10, clock: createManualClock() });
    const a = missToken(cache, 'p:a');
    missToken(cache, 'p:b');
    missToken(cache, 'p:c');
    const seen: CacheRecordView[] = [];
    for await (const view of cache.scan('p:')) {
      seen.push(view);
      if (seen.length === 1) {
        // Between yields: a's lease is filled, b's is voided by a write, c's is left alone.
        assert.equal(cache.fill('p:a', a, entry(1), 0), true);
        cache.beginWrite('p:b', 'w', LEASE);
      }
    }
    assert.deepEqual(
      seen.map((view) => `${view.key}:${view.kind}`),
      ['p:a:fill', 'p:c:fill', 'p:b:write'],
    );
    assert.equal((cache.peek('p:a') as CacheRecordView | undefined)?.kind, 'value', 'the value filled during the scan is kept');
  });
});
