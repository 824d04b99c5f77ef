// Store and cache specs → adapters for chaos runs: the same specs as `lockstep serve`
// (cli/backends.ts parses them), opened with the timeouts a chaos run needs (the store's statement
// or busy timeout below the lease TTL, as the protocol requires) and, for the naive implementation,
// a raw cache of its own on the same backend.
import { openCache, parseCacheSpec, parseStoreSpec } from '../../backend-specs.js';
import { InvalidOptionError } from '../../errors.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { createMemoryNaiveCache, createRedisNaiveCache, type NaiveCache } from '../naive.js';

/** Key prefix of the naive implementation's records in a shared Redis (the engine's are under `lockstep:`). */
export const NAIVE_KEY_PREFIX = 'lockstep-naive:';

/** Opens the store of `spec` with `timeoutMs` as its statement (PostgreSQL, MariaDB) or busy (SQLite) timeout. */
export async function openStoreWithTimeout(spec: string, timeoutMs: number, poolSize = 10): Promise<StoreAdapter> {
  const parsed = parseStoreSpec(spec);
  switch (parsed.kind) {
    case 'sqlite': {
      const { createSqliteStore } = await import('../../store/sqlite.js');
      // NORMAL: a commit survives a process crash (kill -9), which is what the harness does to it.
      return createSqliteStore({ path: parsed.path, busyTimeout: timeoutMs, synchronous: 'NORMAL' });
    }
    case 'postgres': {
      const { createPostgresStore } = await import('../../store/postgres.js');
      const open = (statementTimeout: number, size: number) =>
        createPostgresStore({ connectionString: parsed.connectionString, statementTimeout, poolSize: size, ...(parsed.schema === undefined ? {} : { schema: parsed.schema }) });
      // The schema's set-up (DDL under an advisory lock) with room for a loaded database: the run's
      // statement timeout (a fraction of the lease) is for the operations, not for start-up.
      const setup = open(30_000, 1);
      try {
        await setup.ready();
      } finally {
        await setup.close();
      }
      const store = open(timeoutMs, poolSize);
      for (let attempt = 1; ; attempt++) {
        try {
          await store.ready();
          return store;
        } catch (error) {
          if (attempt >= 5) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        }
      }
    }
    case 'mysql': {
      const { createMysqlStore } = await import('../../store/mysql.js');
      const store = createMysqlStore({ uri: parsed.uri, statementTimeout: timeoutMs, poolSize });
      await store.ready();
      return store;
    }
  }
}

/** The engines' cache; a Redis one quarantines for one lease after a lost dataset (the shortest sound length, so the harness tests that bound). */
export function openEngineCache(spec: string, leaseTtlMs?: number): Promise<CacheAdapter> {
  return whileRedisRestarts(() => openCache(parseCacheSpec(spec), leaseTtlMs === undefined ? {} : { restartQuarantineMs: leaseTtlMs }));
}

export async function openNaiveCache(spec: string): Promise<NaiveCache> {
  const parsed = parseCacheSpec(spec);
  if (parsed.kind === 'memory') return createMemoryNaiveCache();
  if (parsed.url.includes('+cluster://')) throw new InvalidOptionError('the naive implementation runs on a single Redis, not a cluster');
  return whileRedisRestarts(() => createRedisNaiveCache({ url: parsed.url, keyPrefix: NAIVE_KEY_PREFIX }));
}

/**
 * A worker restarted by a fault can start while a scenario has the harness's Redis down (killed,
 * restarting from a snapshot): it waits for Redis as a restarted service would, a bounded while
 * (about 15 s), instead of failing the seed on its first connection attempt.
 */
async function whileRedisRestarts<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (attempt >= 20 || error instanceof InvalidOptionError) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * attempt, 1_000)));
    }
  }
}
