// The seed's sample write-through, kept on purpose as the chaos harness's control: write = store
// write, then an unconditional cache SET; delete = store delete, then a plain DEL; read = GET, and
// on a miss a store read and a SET (no lease, no version check, no journal). It has every race of
// docs/protocol.md ("The races a naive write-through has"), so a harness that cannot catch
// it has no teeth. Same method shapes as the engine's write / readEntry / delete, and the same
// store adapter (versions come from the store), so one driver runs either. Never use it for data.
import { jsonCodec } from '../codec.js';
import { StoreOutcomeUnknownError, StoreReadError, StoreWriteError } from '../errors.js';
import type { Codec, StoreAdapter, Version } from '../types.js';

/** A raw cache: strings with a TTL, nothing else. */
export interface NaiveCache {
  readonly name: string;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  del(key: string): Promise<void>;
  close(): Promise<void>;
}

/** A Map with expiry times: for a single process. */
export function createMemoryNaiveCache(now: () => number = () => performance.now()): NaiveCache {
  const entries = new Map<string, { value: string; expiresAt: number }>();
  return {
    name: 'naive-memory',
    async get(key) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAt <= now()) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    async set(key, value, ttlMs) {
      entries.set(key, { value, expiresAt: now() + ttlMs });
    },
    async del(key) {
      entries.delete(key);
    },
    async close() {
      entries.clear();
    },
  };
}

export interface RedisNaiveCacheOptions {
  readonly url: string;
  /** Prepended to every key; keep it apart from the engine's `lockstep:` records. @default 'lockstep-naive:' */
  readonly keyPrefix?: string;
  /** Deadline of every command, in ms. @default 500 */
  readonly commandTimeoutMs?: number;
}

/** GET / SET PX / DEL on node-redis, each with a deadline, no offline queue (fails fast while Redis is down). */
export async function createRedisNaiveCache(options: RedisNaiveCacheOptions): Promise<NaiveCache> {
  const { createClient } = await import('redis');
  const prefix = options.keyPrefix ?? 'lockstep-naive:';
  const timeoutMs = options.commandTimeoutMs ?? 500;
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 500) },
  });
  client.on('error', () => undefined); // reconnects in the background; failed calls carry the error
  await client.connect();
  const send = async (args: string[]): Promise<unknown> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`naive redis ${args[0]} timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([client.sendCommand(args), deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    name: 'naive-redis',
    async get(key) {
      const reply = await send(['GET', prefix + key]);
      return reply === null || reply === undefined ? undefined : String(reply);
    },
    async set(key, value, ttlMs) {
      await send(['SET', prefix + key, value, 'PX', String(Math.max(1, Math.round(ttlMs)))]);
    },
    async del(key) {
      await send(['DEL', prefix + key]);
    },
    async close() {
      try {
        await client.close();
      } catch {
        client.destroy();
      }
    },
  };
}

export interface NaiveReadEntry<T> {
  readonly found: boolean;
  readonly value: T | undefined;
  readonly version: Version;
  readonly source: 'hit' | 'miss';
}

export interface NaiveWriteThroughOptions {
  readonly store: StoreAdapter;
  readonly cache: NaiveCache;
  /** @default 'default' */
  readonly namespace?: string;
  /** TTL of cached values, in ms. @default 3600000 */
  readonly ttlMs?: number;
  /** Passed to the store as every write's deadline, in ms. @default 2000 */
  readonly storeDeadlineMs?: number;
  /** @default strict JSON, as the engine */
  readonly codec?: Codec;
}

export interface NaiveWriteThrough<T = unknown> {
  readonly namespace: string;
  write(key: string, value: T, options?: { ttl?: number }): Promise<{ version: Version }>;
  readEntry(key: string): Promise<NaiveReadEntry<T>>;
  delete(key: string): Promise<{ version: Version; existed: boolean }>;
  close(): Promise<void>;
}

/** Cached records are `<version>:<payload>`, so a hit can say which version it serves. */
function encodeRecord(version: Version, payload: string): string {
  return `${version}:${payload}`;
}

function decodeRecord(record: string): { version: Version; payload: string } {
  const at = record.indexOf(':');
  return { version: Number(record.slice(0, at)), payload: record.slice(at + 1) };
}

export function createNaiveWriteThrough<T = unknown>(options: NaiveWriteThroughOptions): NaiveWriteThrough<T> {
  const { store, cache } = options;
  const namespace = options.namespace ?? 'default';
  const ttlMs = options.ttlMs ?? 3_600_000;
  const deadlineMs = options.storeDeadlineMs ?? 2000;
  const codec = options.codec ?? jsonCodec;
  const cacheKey = (key: string) => `${namespace}:${key}`;

  // Store failures are classified as the engine does: unknown outcomes stay unknown, the rest were
  // rolled back. Cache failures are swallowed after a committed write: the write is acknowledged and
  // the old value stays readable (race c).
  const storeWrite = async <R>(key: string, commit: () => R | Promise<R>): Promise<R> => {
    try {
      return await commit();
    } catch (error) {
      if (error instanceof StoreOutcomeUnknownError) throw error;
      throw new StoreWriteError(`the store failed the write: ${(error as Error)?.message ?? String(error)}`, { key, namespace, cause: error });
    }
  };

  return {
    namespace,
    async write(key, value, writeOptions) {
      const payload = codec.encode(value);
      const { version } = await storeWrite(key, () => store.write(namespace, key, payload, { journal: false, deadlineMs }));
      await cache.set(cacheKey(key), encodeRecord(version, payload), writeOptions?.ttl ?? ttlMs).catch(() => undefined);
      return { version };
    },
    async readEntry(key) {
      let cached: string | undefined;
      try {
        cached = await cache.get(cacheKey(key));
      } catch {
        cached = undefined; // fail open: read the store (and still SET, as the naive loop does)
      }
      if (cached !== undefined) {
        const { version, payload } = decodeRecord(cached);
        return { found: true, value: codec.decode(payload) as T, version, source: 'hit' };
      }
      let stored;
      try {
        stored = await store.read(namespace, key);
      } catch (error) {
        throw new StoreReadError(`the store failed the read: ${(error as Error)?.message ?? String(error)}`, { key, namespace, cause: error });
      }
      if (stored === undefined) return { found: false, value: undefined, version: 0, source: 'miss' };
      await cache.set(cacheKey(key), encodeRecord(stored.version, stored.payload), ttlMs).catch(() => undefined);
      return { found: true, value: codec.decode(stored.payload) as T, version: stored.version, source: 'miss' };
    },
    async delete(key) {
      const result = await storeWrite(key, () => store.delete(namespace, key, { journal: false, deadlineMs }));
      await cache.del(cacheKey(key)).catch(() => undefined);
      return result;
    },
    async close() {
      // the adapters belong to the caller
    },
  };
}

/** What the naive cache holds for a key, as a version (for the A–E comparison with the store). */
export async function naiveCachedVersion(cache: NaiveCache, namespace: string, key: string): Promise<Version | undefined> {
  const cached = await cache.get(`${namespace}:${key}`);
  return cached === undefined ? undefined : decodeRecord(cached).version;
}
