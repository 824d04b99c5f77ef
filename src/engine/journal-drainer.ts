// Replays the store's journal into the cache: keys written by plain SQL (the triggers journal them)
// and keys Lockstep wrote while the cache could not be leased (the repair journal). Each row is
// applied as invalidateOlder(version), which is idempotent, so replaying a row twice is harmless.
import { cacheKeyOf } from '../keys.js';
import { resolveJournalOptions, type JournalOptions, type ResolvedJournalOptions } from '../options.js';
import type { CacheAdapter, JournalEntry, StoreAdapter } from '../types.js';

export interface JournalDrainerOptions {
  store: StoreAdapter;
  cache: CacheAdapter;
  journal?: JournalOptions | ResolvedJournalOptions;
  /** Called for every row applied to the cache. */
  onRepaired?: (entry: JournalEntry) => void;
  /** Called when a poll fails (the cache or store is down); the rows are retried on the next poll. */
  onError?: (error: unknown) => void;
}

export interface JournalDrainer {
  /** Resolves once the drainer knows where the journal ends; rows written after that are replayed. */
  readonly ready: Promise<void>;
  /** Polls every `pollInterval` until stop(). */
  start(): void;
  stop(): Promise<void>;
  /** Applies every pending row now; returns how many. Concurrent calls share one pass. */
  drain(): Promise<number>;
  /**
   * Counts the rows this drainer applies to one namespace from now until stop(): the drainer applies
   * them, so it counts them, and every engine sharing it reports its own namespace's count. Only
   * watched namespaces are counted (memory stays bounded by the engines alive).
   */
  watchRepairs(namespace: string): RepairWatch;
}

export interface RepairWatch {
  readonly count: number;
  stop(): void;
}

export function isJournalDrainer(value: unknown): value is JournalDrainer {
  return typeof (value as JournalDrainer | undefined)?.drain === 'function';
}

export function createJournalDrainer(options: JournalDrainerOptions): JournalDrainer {
  const { store, cache, onRepaired, onError } = options;
  const journal = 'pollIntervalMs' in (options.journal ?? {}) ? (options.journal as ResolvedJournalOptions) : resolveJournalOptions((options.journal ?? {}) as JournalOptions);
  // Where to start: a shared cache remembers how far it was repaired, so rows committed while no
  // instance ran are still replayed. A cache without a cursor (in-process, or new, or emptied by a
  // restart) holds nothing those rows could make stale: start at the journal's end.
  let cursor = 0;
  let journalId = '';
  const ready = (async () => {
    journalId = await store.journalId();
    const [saved, head] = await Promise.all([cache.loadJournalCursor(journalId), store.journalHead()]);
    cursor = saved === undefined || saved > head ? head : saved;
  })().catch((error: unknown) => {
    onError?.(error); // replaying the whole retained journal from 0 is slower but still correct
  });
  const watched = new Map<string, { count: number; watchers: number }>();
  let pass: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let lastPrune = Date.now();

  async function applyPending(): Promise<number> {
    await ready;
    let applied = 0;
    for (;;) {
      const rows = await store.readJournal(cursor, journal.batchSize);
      for (const row of rows) {
        await cache.invalidateOlder(cacheKeyOf(row.namespace, row.key), row.version);
        cursor = row.id; // advance only past rows the cache took: a failure retries from here
        applied++;
        const watch = watched.get(row.namespace);
        if (watch !== undefined) watch.count++;
        onRepaired?.(row);
      }
      if (rows.length > 0 && cache.capabilities.shared) await cache.saveJournalCursor(journalId, cursor);
      if (rows.length < journal.batchSize) break;
    }
    if (Date.now() - lastPrune >= journal.retentionMs / 10) {
      lastPrune = Date.now();
      await store.pruneJournal(lastPrune - journal.retentionMs);
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

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      drain()
        .catch((error: unknown) => onError?.(error))
        .finally(schedule);
    }, journal.pollIntervalMs);
    timer.unref();
  }

  function watchRepairs(namespace: string): RepairWatch {
    let watch = watched.get(namespace);
    if (watch === undefined) watched.set(namespace, (watch = { count: 0, watchers: 0 }));
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
        if (--counted.watchers === 0 && watched.get(namespace) === counted) watched.delete(namespace);
      },
    };
  }

  return {
    ready,
    drain,
    watchRepairs,
    start() {
      if (running) return;
      running = true;
      // Stores that push (LISTEN/NOTIFY) wake the drainer at once; the poll stays as the fallback.
      unsubscribe = store.onJournal?.(() => {
        if (running) drain().catch((error: unknown) => onError?.(error));
      });
      schedule();
    },
    async stop() {
      running = false;
      unsubscribe?.();
      if (timer !== undefined) clearTimeout(timer);
      await pass?.catch(() => undefined);
    },
  };
}
