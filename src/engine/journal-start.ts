// Where a journal drainer (re)starts, under the journal invariant (docs/protocol.md): a row that
// stands for an acknowledged write is never skipped by a drainer of a cache that could hold an
// older value of its key. A missing or impossible cursor never means "the cache is empty".
import type { CacheAdapter, StoreAdapter } from '../types.js';

/** Every invalidateOlder below this version clears a record, whatever it holds (the flush). */
const FLUSH_VERSION = Number.MAX_SAFE_INTEGER;
const FLUSH_CONCURRENCY = 64;

export type JournalStartReason =
  /** The cache's saved cursor is within the retained journal: replay what follows it. */
  | 'cursor'
  /** The cache holds nothing at all (an in-process cache, checked after the head was read). */
  | 'empty-cache'
  /** No cursor (never saved, lost, another journal name): replay every retained row (flush first if any was pruned). */
  | 'no-cursor'
  /** The cursor is past the journal's head (a journal recreated or restored): replay every retained row (flush first if any was pruned). */
  | 'cursor-ahead'
  /** Rows after the cursor were pruned unseen (an outage longer than the retention): flush, then replay. */
  | 'cursor-behind-retention';

export interface JournalStart {
  /** Replay rows with id > cursor. */
  readonly cursor: number;
  /** The journal's head when the start was decided: the replay ends there. */
  readonly head: number;
  readonly reason: JournalStartReason;
  /** How many cache records the flush cleared (cursor-behind-retention only). */
  readonly flushed: number;
}

/**
 * Decides where to replay from. `known` is this drainer's own cursor when it resyncs after a
 * failed pass (the cache's saved cursor may have been lost or rolled back meanwhile).
 */
export async function locateJournalStart(store: StoreAdapter, cache: CacheAdapter, journalId: string, known?: number): Promise<JournalStart> {
  // The head first: whatever the cache holds after this moment was filled from a store that had
  // every row up to the head committed (inline repair rows are appended after their commit).
  let head = await store.journalHead();
  if (cache.isEmpty?.() === true) return { cursor: head, head, reason: 'empty-cache', flushed: 0 };
  const loaded = await cache.loadJournalCursor(journalId);
  const saved = loaded === undefined || known === undefined ? loaded : Math.min(loaded, known);
  // Another drainer of this cache may have applied rows committed since our head read and saved
  // its cursor past that head: read the head again before calling the cursor impossible (a needless
  // flush of a shared cache otherwise). The cursor is then a real position, trusted as any other.
  if (saved !== undefined && saved > head) head = Math.max(head, await store.journalHead());
  // Rows with id <= retainedFrom may have been pruned; every later row is still there.
  const [oldest] = await store.readJournal(0, 1);
  const retainedFrom = oldest === undefined ? head : oldest.id - 1;
  // Replaying "everything retained" starts just before the oldest row (as from 0, but the rows
  // left to replay can then be counted from the ids).
  if (saved === undefined || saved > head) {
    const reason = saved === undefined ? 'no-cursor' : 'cursor-ahead';
    // Replaying what is retained covers every row only if none was ever pruned. Otherwise a
    // pruned row (pruned by the drainer of another cache over this store) may stand for a write
    // this cache never saw: nothing here can prove otherwise, so the cache is flushed first.
    const flushed = retainedFrom > 0 ? await flushCache(cache) : 0;
    return { cursor: retainedFrom, head, reason, flushed };
  }
  if (saved < retainedFrom) {
    // What the pruned rows invalidated is unknown: clear every record, never trust it. (Id gaps
    // from rolled-back appends can land here too: a needless flush, which is safe.)
    const flushed = await flushCache(cache);
    return { cursor: retainedFrom, head, reason: 'cursor-behind-retention', flushed };
  }
  return { cursor: saved, head, reason: 'cursor', flushed: 0 };
}

/** Clears every record of the cache with version fencing: values go, fills are voided, writes turn dirty. */
async function flushCache(cache: CacheAdapter): Promise<number> {
  let flushed = 0;
  let chunk: Promise<unknown>[] = [];
  for await (const record of cache.scan('')) {
    chunk.push(Promise.resolve(cache.invalidateOlder(record.key, FLUSH_VERSION)));
    flushed++;
    // invalidateOlder calls commute: run them FLUSH_CONCURRENCY at a time instead of one by one.
    if (chunk.length >= FLUSH_CONCURRENCY) {
      await Promise.all(chunk);
      chunk = [];
    }
  }
  await Promise.all(chunk);
  return flushed;
}
