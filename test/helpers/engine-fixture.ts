// A real engine over a real SQLite file and a real memory cache, each wrapped in a chaos wrapper
// so tests can inject faults and pause steps; time is a manual clock, so leases expire on demand.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryCache, type MemoryCacheOptions } from '../../src/cache/memory.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createManualClock, type ManualClock } from '../../src/clock.js';
import { type WriteThrough, type WriteThroughOptions, createWriteThrough } from '../../src/compose/write-through.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';

export const LEASE_MS = 5_000;

export interface EngineFixture<T = unknown> {
  readonly engine: WriteThrough<T>;
  readonly clock: ManualClock;
  readonly cache: ChaosCache;
  readonly store: ChaosStore;
  readonly sqlite: SqliteStore;
  readonly dbPath: string;
  /** Another engine over the same store and cache (another writer or reader in the same process). */
  another(overrides?: Partial<WriteThroughOptions>): WriteThrough<T>;
  /** A second connection to the same SQLite file, for writes that bypass Lockstep. */
  rawConnection(): Database.Database;
  close(): Promise<void>;
}

export interface FixtureOptions {
  engine?: Partial<WriteThroughOptions>;
  cache?: Partial<MemoryCacheOptions>;
  /** Replaces or wraps the memory cache inside the ChaosCache (teeth tests: a naive or mutated cache). */
  wrapCache?: (memory: CacheAdapter) => CacheAdapter;
  /** Lockstep's store in place of the SQLite file's (pattern races on PostgreSQL). */
  store?: StoreAdapter;
}

export async function createEngineFixture<T = unknown>(options: FixtureOptions = {}): Promise<EngineFixture<T>> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-engine-'));
  const dbPath = join(dir, 'store.db');
  const clock = createManualClock(1_000);
  const sqlite = createSqliteStore({ path: dbPath });
  const store = new ChaosStore(options.store ?? sqlite);
  const memory = createMemoryCache({ maxEntries: 1_000, clock, ...options.cache } as MemoryCacheOptions);
  const cache = new ChaosCache(options.wrapCache?.(memory) ?? memory);
  const engines: WriteThrough<T>[] = [];
  const connections: Database.Database[] = [];
  const make = (overrides: Partial<WriteThroughOptions> = {}): WriteThrough<T> => {
    const engine = createWriteThrough<T>({
      store,
      cache,
      clock,
      namespace: 'test',
      leaseTtl: LEASE_MS,
      journal: false, // tests drain explicitly: fixture.engine.drainJournal() is wired below
      ...options.engine,
      ...overrides,
    });
    engines.push(engine);
    return engine;
  };
  const engine = make(options.engine?.journal === undefined ? { journal: { pollInterval: '1h' } } : {});
  return {
    engine,
    clock,
    cache,
    store,
    sqlite,
    dbPath,
    another: make,
    rawConnection() {
      const db = new Database(dbPath);
      db.pragma('busy_timeout = 2000');
      connections.push(db);
      return db;
    },
    async close() {
      for (const db of connections) db.close();
      // Writes left hanging by a simulated crash never settle: do not wait for them.
      await Promise.race([Promise.allSettled(engines.map((e) => e.close())), new Promise((r) => setTimeout(r, 50))]);
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Lets pending promise callbacks run (the engine's steps are separated by awaits). */
export async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}
