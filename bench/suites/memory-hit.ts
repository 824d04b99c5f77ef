// memory-hit: reading a warm key. Every subject holds the same 1,000 small JSON objects and reads
// them in the same round-robin order, BATCH reads per timed iteration (each awaited when the API is
// async). The baseline is an LRUCache holding the decoded objects, the analogue of Lockstep's
// decoded-values memory cache; the peers are bentocache (one memory store, L1 only) and
// cache-manager (its default in-memory Keyv store), each with its defaults. Two reference rows put
// the figures in context: the baseline's get behind an async function (what an awaited API costs at
// least) and bentocache with `serialize: false` (its hit without JSON.parse).
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { createCache } from 'cache-manager';
import { LRUCache } from 'lru-cache';
import { createMemoryCache, createWriteThrough } from 'lockstep';
import { createSqliteStore } from 'lockstep/sqlite';
import { BATCH, createTempDir, cycle, decodedCopy, makeKeys, makeValue, type BenchSubject, type BenchValue, type SuiteDefinition } from '../fixtures.js';

const KEYS = 1000;
const MAX_ENTRIES = 10 * KEYS;

export const LOCKSTEP = 'lockstep read';
export const BASELINE = 'raw lru-cache get';
/** Reference, not a peer: the same get behind an async function, the floor of any promise-returning read. */
export const BASELINE_AWAITED = 'raw lru-cache get, awaited';
export const BENTOCACHE = 'bentocache get';
export const BENTOCACHE_UNSERIALIZED = 'bentocache get (serialize: false)';
export const CACHE_MANAGER = 'cache-manager get';

/** BATCH awaited reads of keys in round-robin order; counts answers that came back empty. */
function asyncReader(name: string, keys: readonly string[], read: (key: string) => Promise<unknown>): BenchSubject {
  const next = cycle(keys.length);
  let empty = 0;
  return {
    name,
    batch: BATCH,
    async: true,
    fn: async () => {
      for (let i = 0; i < BATCH; i++) {
        if ((await read(keys[next()]!)) === undefined) empty++;
      }
    },
    verify: () => (empty === 0 ? undefined : `${name}: ${empty} reads found nothing`),
  };
}

export const memoryHit: SuiteDefinition = {
  name: 'memory-hit',
  async prepare() {
    const keys = makeKeys(KEYS);
    const values = keys.map((_, i) => makeValue(i));
    const temp = createTempDir('memory-hit');

    // Durability is irrelevant to reads, so the store commits without fsync to prepare quickly.
    const store = createSqliteStore({ path: temp.file('lockstep.db'), synchronous: 'NORMAL' });
    const lockstep = createWriteThrough<BenchValue>({ store, cache: createMemoryCache({ maxEntries: MAX_ENTRIES }), namespace: 'bench' });
    for (const [i, key] of keys.entries()) await lockstep.write(key, values[i]!);
    for (const key of keys) {
      const entry = await lockstep.readEntry(key);
      if (entry.source !== 'hit') throw new Error(`memory-hit: lockstep read of ${key} was a ${entry.source}, not a hit`);
    }
    const missesBefore = lockstep.counters.cacheMisses;

    const lru = new LRUCache<string, BenchValue>({ max: MAX_ENTRIES });
    for (const [i, key] of keys.entries()) lru.set(key, decodedCopy(values[i]!));

    const bento = new BentoCache({ default: 'memory', stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: MAX_ENTRIES })) } });
    const bentoRaw = new BentoCache({
      default: 'memory',
      stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: MAX_ENTRIES, serialize: false })) },
    });
    const manager = createCache();
    for (const [i, key] of keys.entries()) {
      await bento.set({ key, value: values[i] });
      await bentoRaw.set({ key, value: values[i] });
      await manager.set(key, values[i]);
    }

    const baselineNext = cycle(keys.length);
    let baselineEmpty = 0;
    const baseline: BenchSubject = {
      name: BASELINE,
      batch: BATCH,
      async: false,
      fn: () => {
        for (let i = 0; i < BATCH; i++) {
          if (lru.get(keys[baselineNext()]!) === undefined) baselineEmpty++;
        }
      },
      verify: () => (baselineEmpty === 0 ? undefined : `${BASELINE}: ${baselineEmpty} reads found nothing`),
    };
    const lockstepSubject = asyncReader(LOCKSTEP, keys, (key) => lockstep.read(key));
    const lockstepVerify = lockstepSubject.verify;

    return {
      suite: 'memory-hit',
      case: `hit read of a warm key (${KEYS} keys cycled, ${BATCH} reads per iteration)`,
      baseline: BASELINE,
      subjects: [
        baseline,
        {
          ...lockstepSubject,
          verify: async () => {
            const misses = lockstep.counters.cacheMisses - missesBefore;
            return misses > 0 ? `${LOCKSTEP}: ${misses} reads missed the cache` : lockstepVerify?.();
          },
        },
        asyncReader(BASELINE_AWAITED, keys, async (key) => lru.get(key)),
        asyncReader(BENTOCACHE, keys, (key) => bento.get({ key })),
        asyncReader(BENTOCACHE_UNSERIALIZED, keys, (key) => bentoRaw.get({ key })),
        asyncReader(CACHE_MANAGER, keys, (key) => manager.get(key)),
      ],
      async close() {
        try {
          await lockstep.close();
          await store.close();
          await bento.disconnect();
          await bentoRaw.disconnect();
          await manager.disconnect();
        } finally {
          temp.remove();
        }
      },
    };
  },
};
