// A memory cache that its owner drops (without close()) must be collectable at once, values and all.
// Its coarse clock reuses a reading under a 1 ms timer; that timer once held the cache's slots, so a
// dropped cache stayed alive until the event loop next ran timers, which a loop of awaited reads
// (only microtasks) puts off for as long as it runs: the miss-fill bench kept every cache it replaced.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createMemoryCache } from '../../src/cache/memory.js';
import type { CacheAdapter, LeaseToken } from '../../src/types.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A cache holding one value (a decoded payload: an object only the cache holds), and a WeakRef to that value. */
function filledCache(): { cache?: CacheAdapter; value: WeakRef<object> } {
  const cache = createMemoryCache({ maxEntries: 10 });
  const miss = cache.get('k', 1000) as { kind: string; token?: LeaseToken };
  assert.equal(miss.kind, 'miss');
  const payload = { held: 'by the cache only' };
  assert.equal(cache.fill('k', miss.token!, { version: 1, payload, tombstone: false, sizeBytes: 2 }, Infinity), true);
  return { cache, value: new WeakRef(payload) };
}

describe('memory cache: dropped without close()', () => {
  it('is collected before the event loop runs its timers', async () => {
    // A WeakRef keeps its target until the task that made it ends: make it in this task, test in the next.
    const holder = filledCache(); // the cache's only holder
    const collected = await new Promise<boolean>((resolve) => {
      setImmediate(() => {
        // One task, no yield: a clock timer of the cache (1 ms) cannot fire in it, as it cannot during
        // a loop of awaited reads. A hit reads the coarse clock (and starts its timer if none runs).
        assert.equal((holder.cache!.get('k', 1000) as { kind: string }).kind, 'value');
        delete holder.cache;
        gc();
        resolve(holder.value.deref() === undefined);
      });
    });
    assert.ok(collected, 'the dropped cache\'s value is still reachable (from its clock timer?)');
  });
});
