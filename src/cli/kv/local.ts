// A KvClient over the engine in this process, from the same service host `serve` uses: the store
// and cache of --store/--cache, one namespace, so a put is the real write-through (store first,
// then the cache's lease protocol). No journal poller, audit or metrics: a one-shot command leaves
// those to the serving instances.
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import type { Backends } from '../backend-flags.js';
import { openCache, openStore } from '../../backend-specs.js';
import type { KvClient } from './client.js';
import { createService } from '../../service/service.js';

export async function openLocalClient(backends: Backends, namespace: string): Promise<KvClient> {
  const opened: Array<StoreAdapter | CacheAdapter> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(opened.splice(0).reverse().map((adapter) => Promise.resolve().then(() => adapter.close())));
  };
  try {
    const store = await openStore(backends.store);
    opened.push(store);
    const cache = await openCache(backends.cache);
    opened.push(cache);
    const service = createService({ store, cache, journal: false, metrics: false, audit: { interval: 0 } });
    const engine = service.engine(namespace);
    return {
      target: `${backends.store.spec} + ${backends.cache.spec}`,
      get: (key) => engine.readEntry(key),
      put: (key, value, ttlMs) => engine.write(key, value, ttlMs === undefined ? undefined : { ttl: ttlMs }),
      del: (key) => engine.delete(key),
      inspect: (key) => engine.inspect(key),
      async close() {
        await service.close().catch(() => undefined);
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
