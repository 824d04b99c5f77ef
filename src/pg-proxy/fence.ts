// The write fence: between a commit on a client's upstream connection and the acknowledgement the
// client sees (its ReadyForQuery 'I'), the proxy reads the keys this backend's transactions wrote
// since the last fence (<schema>.my_journal: committed rows only) and applies invalidateOlder(key,
// committed version) to each, and flushes tables whose definition changed. Only then is the
// acknowledgement relayed. docs/pg-proxy.md carries the argument for why that is enough.
import { rowCacheKey, type ProxyContext } from './context.js';
import { isThenable } from '../maybe-promise.js';
import type { MaybePromise } from '../types.js';
import type { WrittenRow } from './written-row.js';

export type { WrittenRow };

export function writtenRows(rows: readonly (string | null)[][]): WrittenRow[] {
  return rows.map(([id, table, key, version]) => ({ id: Number(id), table: table!, key: key ?? null, version: Number(version) }));
}

/**
 * Applies one batch of journal rows to the cache, in order, each one complete before the next; throws
 * (or rejects) when the cache refuses (the caller decides). Synchronous while the cache answers at
 * once (memory): no turn of the microtask queue per row, nor per batch.
 */
export function applyWrites(ctx: ProxyContext, rows: readonly WrittenRow[], from = 0, flushed = new Set<string>()): MaybePromise<void> {
  for (let i = from; i < rows.length; i++) {
    const row = rows[i]!;
    let done: unknown;
    if (row.key === null) {
      if (flushed.has(row.table)) continue;
      done = ctx.flushTable(row.table);
    } else {
      done = ctx.cache.invalidateOlder(rowCacheKey(ctx, row.table, row.key), row.version);
    }
    if (isThenable(done)) {
      return Promise.resolve(done).then(() => {
        applied(ctx, row, flushed);
        return applyWrites(ctx, rows, i + 1, flushed);
      });
    }
    applied(ctx, row, flushed);
  }
  return undefined;
}

function applied(ctx: ProxyContext, row: WrittenRow, flushed: Set<string>): void {
  if (row.key === null) flushed.add(row.table);
  else ctx.metrics.invalidations++;
}

/** invalidateOlder with a version above every real one: removes any value, voids any fill. */
export const FLUSH_VERSION = Number.MAX_SAFE_INTEGER;
