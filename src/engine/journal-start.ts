// Where a journal drainer (re)starts, under the journal invariant (docs/protocol.md): a row that
// stands for an acknowledged write is never skipped by a drainer of a cache that could hold an
// older value of its key. A missing or impossible cursor never means "the cache is empty", and a
// cursor is trusted only while the row it stands at is still the one it was (its stamp): a store
// that went back to an older state hands its ids and versions out again.
import type { CacheAdapter, JournalCursor, JournalEntry, StoreAdapter } from '../types.js';
import { journalRowStamp, storeIncarnation } from './journal-stamp.js';

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
  /** The cursor is past the journal's head (a store gone back to an older state, a journal recreated): flush, then replay every retained row. */
  | 'cursor-ahead'
  /** Rows after the cursor were pruned unseen (an outage longer than the retention): flush, then replay. */
  | 'cursor-behind-retention'
  /**
   * The store went back to an older state (a replica promoted after a failover, a restore): its
   * incarnation changed, or the row at the cursor is not the one it was. Flush, then replay.
   */
  | 'store-went-back';

export interface JournalStart {
  /** Replay rows with id > cursor. */
  readonly cursor: number;
  /** The stamp of the row at the cursor, when it stands at one (checked again on every pass). */
  readonly stamp: string | undefined;
  /** The store's incarnation hash, read before the head (checked again on every pass). */
  readonly incarnation: string | undefined;
  /** The journal's head when the start was decided: the replay ends there. */
  readonly head: number;
  readonly reason: JournalStartReason;
  /** How many cache records the flush cleared (the reasons that flush). */
  readonly flushed: number;
  /**
   * How the start is recorded in the cache: 'none' (it is the saved cursor, as saved), 'advance'
   * (saved unless the cache has a later one), 'replace' (the saved one stands for rows the store no
   * longer has, or lacks the stamp or incarnation now known: a cursor from an older version).
   */
  readonly save: 'none' | 'advance' | 'replace';
}

/**
 * Decides where to replay from. `known` is this drainer's own cursor when it resyncs after a
 * failed pass (the cache's saved cursor may have been lost or rolled back meanwhile); `rewound`
 * says its pass found the store gone back under that cursor (see cursorRow).
 */
export async function locateJournalStart(store: StoreAdapter, cache: CacheAdapter, journalId: string, known?: JournalCursor, rewound = false): Promise<JournalStart> {
  // The head first: whatever the cache holds after this moment was filled from a store that had
  // every row up to the head committed (inline repair rows are appended after their commit).
  // The incarnation before the head: a failover between the two shows at the next pass.
  const incarnation = await storeIncarnation(store);
  let head = await store.journalHead();
  if (cache.isEmpty?.() === true) return { cursor: head, stamp: stampOf(await rowAt(store, head)), incarnation, head, reason: 'empty-cache', flushed: 0, save: 'advance' };
  const loaded = await cache.loadJournalCursor(journalId);
  const saved = loaded === undefined || known === undefined || loaded.id <= known.id ? loaded : known;
  // Another drainer of this cache may have applied rows committed since our head read and saved
  // its cursor past that head: read the head again before calling the cursor impossible (a needless
  // flush of a shared cache otherwise). The cursor is then a real position, trusted as any other.
  if (saved !== undefined && saved.id > head) head = Math.max(head, await store.journalHead());
  // Rows with id <= retainedFrom may have been pruned; every later row is still there.
  const [oldest] = await store.readJournal(0, 1);
  const retainedFrom = oldest === undefined ? head : oldest.id - 1;
  // Replaying "everything retained" starts just before the oldest row (as from 0, but the rows
  // left to replay can then be counted from the ids).
  const replayAll = async (reason: JournalStartReason, flush: boolean): Promise<JournalStart> => ({
    cursor: retainedFrom,
    stamp: undefined,
    incarnation,
    head,
    reason,
    flushed: flush ? await flushCache(cache) : 0,
    save: reason === 'store-went-back' || reason === 'cursor-ahead' ? 'replace' : 'advance',
  });
  // The store went back to an older state (a failover to an asynchronous replica, a restore): the
  // cache may hold values of writes it lost, at versions it will hand out again, which no
  // invalidateOlder of a later row would clear. Nothing cached can be trusted.
  if (rewound) return replayAll('store-went-back', true);
  // Replaying what is retained covers every row only if none was ever pruned. Otherwise a pruned
  // row (pruned by the drainer of another cache over this store) may stand for a write this cache
  // never saw: nothing here can prove otherwise, so the cache is flushed first.
  if (saved === undefined) return replayAll('no-cursor', retainedFrom > 0);
  if (incarnationChanged(saved, incarnation)) return replayAll('store-went-back', true);
  if (saved.id > head) return replayAll('cursor-ahead', true);
  // What the pruned rows invalidated is unknown: clear every record, never trust it. (Id gaps
  // from rolled-back appends can land here too: a needless flush, which is safe.)
  if (saved.id < retainedFrom) return replayAll('cursor-behind-retention', true);
  const row = await cursorRow(store, saved);
  if (row === 'rewound') return replayAll('store-went-back', true);
  // A pruned row can no longer be checked: the cursor goes on without its stamp. A cursor saved
  // by an older version (neither stamp nor incarnation) gets them now, or a quiet journal never
  // would (an equal id is not saved over).
  const stamp = row === 'same' ? saved.stamp : row === 'unstamped' ? stampOf(await rowAt(store, saved.id)) : undefined;
  const upgraded = (saved.stamp === undefined && stamp !== undefined) || (saved.incarnation === undefined && incarnation !== undefined);
  return { cursor: saved.id, stamp, incarnation, head, reason: 'cursor', flushed: 0, save: upgraded ? 'replace' : 'none' };
}

/**
 * What became of the row at `cursor` (`rows`: read from just before it, if the caller has them):
 * - 'same': there, with the cursor's stamp;
 * - 'rewound': the store went back to an older state under the cursor: the row has another stamp,
 *   or it is gone where no pruning could have removed it: pruning removes a prefix of the journal,
 *   never a row with an older one still there; or, with no row at or after it, the journal's head
 *   (which pruning never lowers) is below it;
 * - 'pruned': gone, and nothing says the store went back (pruned by the drainer of another cache,
 *   past ours; or the last row, pruned through its cursor by an older version): nothing to check;
 * - 'unstamped': the cursor stands at no row it knows (not checked).
 */
export async function cursorRow(store: StoreAdapter, cursor: JournalCursor, rows?: readonly JournalEntry[]): Promise<'same' | 'rewound' | 'pruned' | 'unstamped'> {
  if (cursor.stamp === undefined) return 'unstamped';
  const [first] = rows ?? (await store.readJournal(cursor.id - 1, 1));
  if (first?.id === cursor.id) return journalRowStamp(first) === cursor.stamp ? 'same' : 'rewound';
  const [oldest] = await store.readJournal(0, 1);
  if (oldest !== undefined && oldest.id < cursor.id) return 'rewound';
  if (first === undefined && (await store.journalHead()) < cursor.id) return 'rewound';
  return 'pruned';
}

/** Whether the store's incarnation is another than the cursor's (unknown on either side: not checked). */
export function incarnationChanged(cursor: JournalCursor, incarnation: string | undefined): boolean {
  return cursor.incarnation !== undefined && incarnation !== undefined && cursor.incarnation !== incarnation;
}

async function rowAt(store: StoreAdapter, id: number): Promise<JournalEntry | undefined> {
  if (id <= 0) return undefined;
  const [row] = await store.readJournal(id - 1, 1);
  return row?.id === id ? row : undefined;
}

function stampOf(row: JournalEntry | undefined): string | undefined {
  return row === undefined ? undefined : journalRowStamp(row);
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
