// The write fence: between a commit on a client's upstream connection and the acknowledgement the
// client sees (its ReadyForQuery 'I'), the proxy reads the keys this backend's transactions wrote
// since the last fence (<schema>.my_journal: committed rows only) and applies invalidateOlder(key,
// committed version) to each, and flushes tables whose definition changed. Only then is the
// acknowledgement relayed. docs/pg-proxy.md carries the argument for why that is enough.
import { rowCacheKey, type ProxyContext } from './context.js';
import { isThenable } from './maybe-promise.js';

export interface WrittenRow {
  readonly id: number;
  readonly table: string;
  readonly key: string | null;
  readonly version: number;
}

export function writtenRows(rows: readonly (string | null)[][]): WrittenRow[] {
  return rows.map(([id, table, key, version]) => ({ id: Number(id), table: table!, key: key ?? null, version: Number(version) }));
}

/** Applies one batch of journal rows to the cache. Throws when the cache refuses (the caller decides). */
export async function applyWrites(ctx: ProxyContext, rows: readonly WrittenRow[]): Promise<void> {
  const flushed = new Set<string>();
  for (const row of rows) {
    if (row.key === null) {
      if (!flushed.has(row.table)) await ctx.flushTable(row.table);
      flushed.add(row.table);
      continue;
    }
    const done = ctx.cache.invalidateOlder(rowCacheKey(ctx, row.table, row.key), row.version);
    if (isThenable(done)) await done; // a memory cache answers at once: no turn of the microtask queue per row
    ctx.metrics.invalidations++;
  }
}

/** invalidateOlder with a version above every real one: removes any value, voids any fill. */
export const FLUSH_VERSION = Number.MAX_SAFE_INTEGER;
