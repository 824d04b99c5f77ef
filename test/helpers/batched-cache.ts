// A cache whose every beginWrite and completeWrite reaches the Redis adapter in the middle of a tick
// of write calls, so that the adapter runs it in a writeBatch script run (src/cache/redis-write-batch.ts)
// rather than in its own script: a companion call goes first (a tick's first waited-for call is sent
// alone) and another after it, both a completeWrite without a lease on a key of their own, which
// changes nothing (invalidateOlder on an empty record). The conformance suite runs through it, so
// every row of the transition table is checked in the batch script too.
import type { CacheAdapter, CacheEntry, CompleteWriteOptions, LeaseToken } from '../../src/types.js';

const COMPANION: CacheEntry = { version: 1, payload: 'companion', tombstone: false, sizeBytes: 9 };

/** `cache` with its write calls run in batches; `companionKey` must hold nothing, ever. */
export function batchedWrites<C extends CacheAdapter>(cache: C, companionKey = 'batch-companion'): C {
  const companion = (): Promise<unknown> => Promise.resolve(cache.completeWrite(companionKey, 'companion', COMPANION, 60_000));
  const around = <T>(call: () => T | Promise<T>): Promise<T> => {
    const before = companion();
    const own = Promise.resolve(call());
    const behind = companion();
    return Promise.all([before, own, behind]).then(() => own);
  };
  return new Proxy(cache, {
    get(target, property, receiver) {
      if (property === 'beginWrite') {
        return (key: string, token: LeaseToken, leaseMs: number) => around(() => target.beginWrite(key, token, leaseMs));
      }
      if (property === 'completeWrite') {
        return (key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions) =>
          around(() => target.completeWrite(key, token, entry, ttlMs, options));
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
