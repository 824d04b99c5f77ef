// Deliberately wrong caches behind the same port, for teeth tests: what a pattern looks like when
// the protocol's fences are gone. Never use them for data.
import type { CacheAdapter, CacheEntry, CacheGetResult, CacheRecordView, LeaseToken } from '../../src/types.js';

/**
 * The seed's naive loop expressed through the cache port: every miss may fill, fills and
 * completions SET unconditionally, leases do nothing, invalidation is a plain DEL.
 */
export function createNaivePortCache(): CacheAdapter {
  const values = new Map<string, CacheEntry>();
  let tokens = 0;
  return {
    name: 'naive-port',
    capabilities: { decodedValues: false, shared: false },
    get(key): CacheGetResult {
      const entry = values.get(key);
      if (entry === undefined) return { kind: 'miss', token: `naive-${++tokens}` };
      return { kind: 'value', version: entry.version, payload: entry.payload, tombstone: entry.tombstone };
    },
    fill(key, _token: LeaseToken, entry) {
      values.set(key, entry);
      return true;
    },
    beginWrite() {},
    completeWrite(key, _token, entry) {
      values.set(key, entry);
      return 'published';
    },
    abortWrite() {},
    invalidateOlder(key) {
      values.delete(key);
    },
    peek(key): CacheRecordView | undefined {
      const entry = values.get(key);
      return entry && { key, kind: 'value', version: entry.version, payload: entry.payload, tombstone: entry.tombstone, expiresAt: Infinity };
    },
    async *scan() {},
    ping() {},
    stats: () => ({ leasesExpired: 0 }),
    loadJournalCursor: () => undefined,
    saveJournalCursor() {},
    close() {},
  };
}

/** The real cache, except that a writer's lease is never taken: a helper that forgot beginWrite. */
export function withoutWriteLease(inner: CacheAdapter): CacheAdapter {
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'beginWrite') return () => undefined;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
