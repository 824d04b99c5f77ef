// miss-fill: reading a key that is in the store but not in the cache, which fills the cache. Both
// subjects read a pool of keys once each, in order, BATCH reads per timed iteration; when the pool
// runs out, an untimed step replaces the cache with an empty one so every read stays cold. The
// baseline is a naive read-through on the raw driver: lru-cache get (miss), prepared SELECT,
// JSON.parse, lru-cache set. Each subject reads its own database file holding the same rows.
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { createMemoryCache, createWriteThrough, jsonCodec, type WriteThrough } from 'lockstep';
import { createSqliteStore } from 'lockstep/sqlite';
import { BATCH, createTempDir, makeKeys, makeValue, type BenchValue, type SuiteDefinition } from '../fixtures.js';

export const LOCKSTEP = 'lockstep read';
export const BASELINE = 'raw sqlite select + lru-cache set';
const NAMESPACE = 'bench';

/** Keys read once each, then a fresh cache; `take` hands out the next key. */
function coldPool(size: number) {
  let at = 0;
  return {
    /** True when the next iteration could run past the pool: replace the cache first. */
    exhausted: () => at + 2 * BATCH > size,
    rewind: () => {
      at = 0;
    },
    take: () => at++,
  };
}

export const missFill: SuiteDefinition = {
  name: 'miss-fill',
  async prepare(options) {
    const poolSize = options.quick ? 5_000 : 20_000;
    const keys = makeKeys(poolSize);
    const temp = createTempDir('miss-fill');

    // Durability is irrelevant to reads, so the stores commit without fsync to prepare quickly.
    const store = createSqliteStore({ path: temp.file('lockstep.db'), synchronous: 'NORMAL' });
    for (const [i, key] of keys.entries()) {
      await store.write(NAMESPACE, key, jsonCodec.encode(makeValue(i)), { journal: false, deadlineMs: 5_000 });
    }
    const db = new Database(temp.file('raw.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID');
    const insert = db.prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (const [i, key] of keys.entries()) insert.run(key, JSON.stringify(makeValue(i)), Date.now());
    })();
    const select = db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?');

    const freshEngine = (): WriteThrough<BenchValue> =>
      createWriteThrough<BenchValue>({ store, cache: createMemoryCache({ maxEntries: poolSize + BATCH }), namespace: NAMESPACE });
    let engine = freshEngine();
    let lockstepHits = 0;
    let lockstepEmpty = 0;
    const lockstepPool = coldPool(poolSize);

    const newLru = () => new LRUCache<string, BenchValue>({ max: poolSize + BATCH });
    let lru = newLru();
    let baselineHits = 0;
    const baselinePool = coldPool(poolSize);

    return {
      suite: 'miss-fill',
      case: `cold read filling the cache (${poolSize} keys per cache, each read once, ${BATCH} reads per iteration)`,
      baseline: BASELINE,
      subjects: [
        {
          name: BASELINE,
          batch: BATCH,
          async: false,
          beforeEach: () => {
            if (!baselinePool.exhausted()) return;
            lru = newLru();
            baselinePool.rewind();
          },
          fn: () => {
            for (let i = 0; i < BATCH; i++) {
              const key = keys[baselinePool.take()]!;
              let value = lru.get(key);
              if (value === undefined) {
                const row = select.get(key);
                if (row === undefined) throw new Error(`miss-fill: ${key} is not in the raw table`);
                value = JSON.parse(row.value) as BenchValue;
                lru.set(key, value);
              } else {
                baselineHits++;
              }
            }
          },
          verify: () => (baselineHits === 0 ? undefined : `${BASELINE}: ${baselineHits} reads hit the cache`),
        },
        {
          name: LOCKSTEP,
          batch: BATCH,
          async: true,
          beforeEach: async () => {
            if (!lockstepPool.exhausted()) return;
            lockstepHits += engine.counters.cacheHits;
            await engine.close();
            engine = freshEngine();
            lockstepPool.rewind();
          },
          fn: async () => {
            for (let i = 0; i < BATCH; i++) {
              if ((await engine.read(keys[lockstepPool.take()]!)) === undefined) lockstepEmpty++;
            }
          },
          verify: () => {
            const hits = lockstepHits + engine.counters.cacheHits;
            if (hits > 0) return `${LOCKSTEP}: ${hits} reads hit the cache`;
            return lockstepEmpty === 0 ? undefined : `${LOCKSTEP}: ${lockstepEmpty} reads found nothing`;
          },
        },
      ],
      async close() {
        try {
          await engine.close();
          await store.close();
          db.close();
        } finally {
          temp.remove();
        }
      },
    };
  },
};
