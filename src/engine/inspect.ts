// What inspect() reads: the store's row and the cache's record of one key, each within the lease
// budget, a failure of either named after its backend (StoreReadError / CacheError), never a
// driver's raw error.
import { CacheError, CacheTimeoutError } from '../errors.js';
import type { CacheRecordView, StoredValue } from '../types.js';
import type { EngineContext } from './context.js';
import { startDeadline, within } from './deadline.js';
import { readStoreValue, readTimeout } from './read-path.js';

export async function inspectBoth(ctx: EngineContext, key: string, cacheKey: string): Promise<[StoredValue | undefined, CacheRecordView | undefined]> {
  const deadline = startDeadline(ctx.options.leaseTtlMs);
  const stored = within(deadline, () => readStoreValue(ctx, key), () => readTimeout(ctx, key));
  const cached = within(
    deadline,
    async () => ctx.cache.peek(cacheKey),
    () => new CacheTimeoutError(`the cache did not answer the peek within ${ctx.options.leaseTtlMs} ms`, { key, namespace: ctx.namespace }),
  ).catch((error: unknown) => {
    if (error instanceof CacheError) throw error;
    throw new CacheError(`the cache failed the peek: ${error instanceof Error ? error.message : String(error)}`, { key, namespace: ctx.namespace, cause: error });
  });
  return Promise.all([stored, cached]);
}
