// Replays the store's journal into the cache: keys written by plain SQL (the triggers journal them)
// and keys Lockstep wrote while the cache could not be leased (the repair journal). Each row is
// applied as invalidateOlder(version), which is idempotent and version-fenced, so replaying a row
// twice is harmless and skipping one never is: see journal-start.ts and docs/protocol.md.
import { StoreReadError } from '../errors.js';
import { cacheKeyOf } from '../keys.js';
import { resolveJournalOptions, type JournalOptions, type ResolvedJournalOptions } from '../options.js';
import type { CacheAdapter, JournalCursor, JournalEntry, StoreAdapter } from '../types.js';
import { cursorRow, incarnationChanged, locateJournalStart, type JournalStart, type JournalStartReason } from './journal-start.js';
import { journalRowStamp, storeIncarnation } from './journal-stamp.js';

export interface JournalDrainerOptions {
  store: StoreAdapter;
  cache: CacheAdapter;
  journal?: JournalOptions | ResolvedJournalOptions;
  /** Called for every row applied to the cache. */
  onRepaired?: (entry: JournalEntry) => void;
  /** Called when a poll fails (the cache or store is down); the rows are retried on the next poll. */
  onError?: (error: unknown) => void;
  /** Called once the start point is decided (and the cache flushed, if it had to be). */
  onStart?: (start: JournalStart) => void;
}

/** `replaying`: the rows up to the head seen at start are not all applied yet; reads bypass cached values. */
export interface JournalDrainerStatus {
  readonly state: 'replaying' | 'ready';
  /** Rows (by id) still to apply before the replay ends; 0 when ready. */
  readonly rowsLeft: number;
  /** Why the drainer started where it did (undefined until it knows). */
  readonly start: JournalStartReason | undefined;
}

export interface JournalDrainer {
  /** Resolves once the drainer knows where it starts; every row written after that is replayed. */
  readonly ready: Promise<void>;
  /** Resolves once the rows retained at start (up to that head) are applied to the cache. */
  readonly replayed: Promise<void>;
  /** Whether cached values may still be older than a retained row (reads then go to the store). */
  replaying(): boolean;
  status(): JournalDrainerStatus;
  /** Polls every `pollInterval` until stop(). */
  start(): void;
  stop(): Promise<void>;
  /** Applies every pending row now; returns how many. Concurrent calls share one pass. */
  drain(): Promise<number>;
  /**
   * Counts the rows this drainer applies to one namespace from now until stop(): the drainer applies
   * them, so it counts them, and every engine sharing it reports its own namespace's count. Only
   * watched namespaces are counted (memory stays bounded by the engines alive). Without a
   * namespace, counts the rows of every namespace.
   */
  watchRepairs(namespace?: string): RepairWatch;
}

export interface RepairWatch {
  readonly count: number;
  stop(): void;
}

export function isJournalDrainer(value: unknown): value is JournalDrainer {
  return typeof (value as JournalDrainer | undefined)?.drain === 'function';
}

/** invalidateOlder calls in flight at once while a batch is applied (they commute: any order is the same). */
const APPLY_CONCURRENCY = 64;

export function createJournalDrainer(options: JournalDrainerOptions): JournalDrainer {
  const { store, cache, onRepaired, onError, onStart } = options;
  const journal = 'pollIntervalMs' in (options.journal ?? {}) ? (options.journal as ResolvedJournalOptions) : resolveJournalOptions((options.journal ?? {}) as JournalOptions);
  // Until the start is known the cursor is 0 (replay everything retained): never "start at head"
  // on a guess. A failed pass makes the next one check the start again (resync): meanwhile the
  // cache's cursor may have been lost or rolled back, or rows pruned past ours. The cursor carries
  // the stamp of the row it stands at and the store's incarnation, both checked on every pass.
  let cursor: JournalCursor = { id: 0 };
  /** The store's incarnation as this pass read it: the cursor's, once the pass applies a row. */
  let incarnation: string | undefined;
  let journalId = '';
  let replayHead: number | undefined;
  let replayDone = false;
  let startReason: JournalStartReason | undefined;
  let resync = true;
  let markReplayed: () => void = () => undefined;
  const replayed = new Promise<void>((resolve) => (markReplayed = resolve));

  async function locate(rewound = false): Promise<void> {
    journalId ||= await store.journalId();
    const first = replayHead === undefined;
    const start = await locateJournalStart(store, cache, journalId, first ? undefined : cursor, rewound);
    // A resync that has to go back (the cache lost or rolled back its cursor) replays again, and
    // reads bypass cached values until it is done, as at start.
    if (first || start.cursor < cursor.id) {
      replayHead = start.head;
      replayDone = false;
    }
    incarnation = start.incarnation;
    cursor = { id: start.cursor, stamp: start.stamp, incarnation };
    startReason = start.reason;
    // Record where it starts unless that is the saved cursor: every row up to it is applied (or
    // pruned, and flushed for), and the cursor then carries the store's incarnation for the next
    // start to check, even over a journal without a row (start.save says how).
    if (start.save !== 'none') await cache.saveJournalCursor(journalId, cursor, start.save === 'replace');
    resync = false;
    if (cursor.id >= replayHead!) finishReplay();
    onStart?.(start);
  }
  function finishReplay(): void {
    if (replayDone) return;
    replayDone = true;
    markReplayed();
  }
  const ready = locate().catch((error: unknown) => {
    onError?.(error); // the cursor stays at 0 and the first pass locates again: slower, still correct
  });
  const watched = new Map<string, { count: number; watchers: number }>();
  let everyNamespace: { count: number; watchers: number } | undefined;
  let pass: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let lastPrune = Date.now();

  /** Applies rows in id order; the cursor moves only past rows the cache took, so a failure retries them. */
  async function applyBatch(rows: readonly JournalEntry[]): Promise<number> {
    // One invalidateOlder per key, at its highest version: the others are implied by it.
    const highest = new Map<string, number>();
    for (const row of rows) {
      const key = cacheKeyOf(row.namespace, row.key);
      highest.set(key, Math.max(row.version, highest.get(key) ?? 0));
    }
    const failed = new Set<string>();
    let firstError: unknown;
    const keys = [...highest.keys()];
    for (let i = 0; i < keys.length; i += APPLY_CONCURRENCY) {
      const chunk = keys.slice(i, i + APPLY_CONCURRENCY);
      const results = await Promise.allSettled(chunk.map(async (key) => cache.invalidateOlder(key, highest.get(key)!)));
      results.forEach((result, j) => {
        if (result.status === 'rejected') {
          failed.add(chunk[j]!);
          firstError ??= result.reason;
        }
      });
    }
    let applied = 0;
    let last: JournalEntry | undefined;
    try {
      for (const row of rows) {
        if (failed.has(cacheKeyOf(row.namespace, row.key))) throw firstError;
        last = row;
        applied++;
        const watch = watched.get(row.namespace);
        if (watch !== undefined) watch.count++;
        if (everyNamespace !== undefined) everyNamespace.count++;
        onRepaired?.(row);
      }
    } finally {
      if (last !== undefined) cursor = { id: last.id, stamp: journalRowStamp(last), incarnation };
    }
    return applied;
  }

  /**
   * The rows after the cursor, or what became of the cursor's row when it is not there as it was.
   * A stamped cursor is read from its own row, which is checked first: the same query, one row more.
   * `readIncarnation`: once per pass and after a relocation in it (a start at the pass's beginning
   * just read it; later batches need not).
   */
  async function readAfterCursor(readIncarnation: boolean): Promise<JournalEntry[] | 'rewound' | 'pruned'> {
    if (readIncarnation) {
      incarnation = await storeIncarnation(store);
      if (incarnationChanged(cursor, incarnation)) return 'rewound';
      // A cursor from a start that could not tell (nothing to compare yet) takes the first one known.
      if (cursor.incarnation === undefined && incarnation !== undefined) cursor = { ...cursor, incarnation };
    }
    if (cursor.stamp === undefined) return store.readJournal(cursor.id, journal.batchSize);
    const rows = await store.readJournal(cursor.id - 1, journal.batchSize + 1);
    const row = await cursorRow(store, cursor, rows);
    if (row === 'rewound' || row === 'pruned') return row;
    return rows.slice(1);
  }

  async function applyPending(): Promise<number> {
    await ready;
    let applied = 0;
    try {
      // A start reads the incarnation: the pass's first read need not again.
      let incarnationRead = resync;
      if (resync) await locate();
      let located = false;
      for (;;) {
        const rows = await readAfterCursor(!incarnationRead);
        incarnationRead = true;
        if (rows === 'rewound' || rows === 'pruned') {
          // The store went back to an older state (a failover, a restore): flush and replay. Or our
          // row was pruned past us: the start rules decide (rows pruned unseen flush the cache).
          // Once per pass: a store whose answers flap (two servers behind one address) must not
          // hold a pass in a loop of flushes. The pass fails instead; the next one locates again.
          if (located) throw new StoreReadError("the journal moved under the drainer's cursor again within one pass (do two servers answer at one address?)");
          located = true;
          await locate(rows === 'rewound');
          // Read again after a relocation within a pass: a store that flaps shows here.
          incarnationRead = false;
          continue;
        }
        try {
          applied += await applyBatch(rows);
        } finally {
          if (applied > 0) await Promise.resolve(cache.saveJournalCursor(journalId, cursor)).catch(() => undefined);
        }
        if (rows.length < journal.batchSize) break;
      }
      // Reached the end: whatever the start saw is applied. Save even when nothing was (a cache
      // that had no cursor now has one, so its next start needs no full replay).
      if (!replayDone) {
        await cache.saveJournalCursor(journalId, cursor);
        finishReplay();
      }
    } catch (error) {
      resync = true;
      throw error;
    }
    if (Date.now() - lastPrune >= journal.retentionMs / 10) {
      lastPrune = Date.now();
      // Never past our cursor: a row committed during this pass with an old timestamp is not applied
      // yet. Nor the cursor's own row: the next pass and the next start check it (cursorRow).
      await store.pruneJournal(lastPrune - journal.retentionMs, cursor.id - 1);
    }
    return applied;
  }

  function drain(): Promise<number> {
    pass ??= applyPending().finally(() => {
      pass = undefined;
    });
    return pass;
  }

  let unsubscribe: (() => void) | undefined;

  function schedule(delayMs = journal.pollIntervalMs): void {
    if (!running) return;
    timer = setTimeout(() => {
      drain()
        .catch((error: unknown) => onError?.(error))
        .finally(() => schedule());
    }, delayMs);
    timer.unref();
  }

  function watchRepairs(namespace?: string): RepairWatch {
    let watch = namespace === undefined ? everyNamespace : watched.get(namespace);
    if (watch === undefined) {
      watch = { count: 0, watchers: 0 };
      if (namespace === undefined) everyNamespace = watch;
      else watched.set(namespace, watch);
    }
    watch.watchers++;
    const counted = watch;
    let stopped = false;
    return {
      get count() {
        return counted.count;
      },
      stop() {
        if (stopped) return;
        stopped = true;
        if (--counted.watchers > 0) return;
        if (namespace === undefined) {
          if (everyNamespace === counted) everyNamespace = undefined;
        } else if (watched.get(namespace) === counted) watched.delete(namespace);
      },
    };
  }

  return {
    ready,
    replayed,
    replaying: () => !replayDone,
    status: () => ({
      state: replayDone ? 'ready' : 'replaying',
      rowsLeft: replayDone ? 0 : Math.max(0, (replayHead ?? 0) - cursor.id),
      start: startReason,
    }),
    drain,
    watchRepairs,
    start() {
      if (running) return;
      running = true;
      // Stores that push (LISTEN/NOTIFY) wake the drainer at once; the poll stays as the fallback.
      unsubscribe = store.onJournal?.(() => {
        if (running) drain().catch((error: unknown) => onError?.(error));
      });
      // A replay the start found pending begins at once, not after a poll.
      void ready.then(() => schedule(replayDone ? journal.pollIntervalMs : 0));
    },
    async stop() {
      running = false;
      unsubscribe?.();
      if (timer !== undefined) clearTimeout(timer);
      await pass?.catch(() => undefined);
    },
  };
}
