// write: a durable write of a small JSON object (SQLite in WAL mode with synchronous=FULL, so every
// commit is fsynced), one write per timed iteration over 1,000 keys in round-robin order. The
// baseline is what a naive write-through does with the same durability: serialize, upsert with a
// prepared INSERT ... ON CONFLICT DO UPDATE in its own transaction, then set the object in an
// LRUCache. Each subject has its own database file.
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { createMemoryCache, createWriteThrough } from 'lockstep';
import { createSqliteStore } from 'lockstep/sqlite';
import { createTempDir, cycle, makeKeys, makeValue, type BenchValue, type SuiteDefinition } from '../fixtures.js';

const KEYS = 1000;

export const LOCKSTEP = 'lockstep write';
export const BASELINE = 'raw sqlite upsert + lru-cache set';

export const write: SuiteDefinition = {
  name: 'write',
  async prepare() {
    const keys = makeKeys(KEYS);
    const values = keys.map((_, i) => makeValue(i));
    const temp = createTempDir('write');

    const store = createSqliteStore({ path: temp.file('lockstep.db'), synchronous: 'FULL' });
    const lockstep = createWriteThrough<BenchValue>({ store, cache: createMemoryCache({ maxEntries: 10 * KEYS }), namespace: 'bench' });
    const failuresBefore = lockstep.counters.failures;

    const db = new Database(temp.file('raw.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID');
    const upsert = db.prepare(
      'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
    const upsertTx = db.transaction((key: string, payload: string) => upsert.run(key, payload, Date.now()));
    const lru = new LRUCache<string, BenchValue>({ max: 10 * KEYS });

    const baselineNext = cycle(KEYS);
    const lockstepNext = cycle(KEYS);
    return {
      suite: 'write',
      case: `durable write, SQLite WAL synchronous=FULL (${KEYS} keys cycled, 1 write per iteration)`,
      baseline: BASELINE,
      subjects: [
        {
          name: BASELINE,
          batch: 1,
          async: false,
          fn: () => {
            const i = baselineNext();
            const key = keys[i]!;
            const value = values[i]!;
            upsertTx(key, JSON.stringify(value));
            lru.set(key, value);
          },
        },
        {
          name: LOCKSTEP,
          batch: 1,
          async: true,
          fn: () => {
            const i = lockstepNext();
            return lockstep.write(keys[i]!, values[i]!);
          },
          verify: () => {
            const failures = lockstep.counters.failures - failuresBefore;
            return failures > 0 ? `${LOCKSTEP}: ${failures} writes did not complete cleanly` : undefined;
          },
        },
      ],
      async close() {
        try {
          await lockstep.close();
          await store.close();
          db.close();
        } finally {
          temp.remove();
        }
      },
    };
  },
};
