// The auditor: every key of one namespace, from both sides, classified A–E (classifyKey), counted,
// with a few examples per state, and optionally repaired with version fencing.
//
// How a namespace is walked:
//   1. the store's live keys, page by page (StoreAdapter.scan), each with a peek of its cache record;
//   2. the cache's records under `<namespace>:` (CacheAdapter.scan) whose key the store did not list:
//      cache only (E) or nothing servable (A: a tombstone or a lease over no row).
// The two sides are not read at one instant, so a key that looks D or E in the walk (a write landed
// between the page and the peek) is confirmed by fresh point reads (confirmKey), which count it D or
// E only when the two sides prove it, by the rule of the online sampler (src/audit/sampler.ts): store
// versions only rise, and every write leases the key before it commits, so a cache below a store
// read made before the peek is stale; a cache ahead of that read may be a write that committed in
// between, and is a defect only if a second store read is still below it (or, over no row, a
// second peek still serves the same value). Memory: the store keys seen (strings, not values) are
// held for the duration of the walk, to tell in step 2 which cached keys the store listed.
//
// Repair (D and E only; A, B and C are never touched) with version fencing,
// cache.invalidateOlder(cacheKey, fence), which removes a servable version below `fence`, voids a
// fill lease and marks an older write lease dirty, and never removes a version at or above `fence`:
//   - D, the cache below the store (a stale value, or a tombstone over a newer row):
//     fence = the store's version. Every stale version goes; the store's version itself (which is
//     correct) and anything newer (a write that landed since the confirming read) are kept.
//   - D, the cache at or above the store (a version the store never committed, e.g. after a restore
//     from backup, or a tombstone at the row's version): the store is the truth, so that record is
//     wrong too: fence = cached version + 1. A newer write than that is still kept.
//   - E (a live value over no row): fence = cached version + 1 (the delete that removed the row
//     committed a higher version; a re-create since then is higher still, and kept).
// After repairing, every repaired key is read again on both sides and classified: what is still D
// or E is reported as remaining (a concurrent plain-SQL write, a cache that failed the call …).
import { classifyKey } from '../engine/classify.js';
import type { KeyState } from '../engine/api.js';
import { cacheKeyOf } from '../keys.js';
import type { CacheAdapter, CacheRecordView, StoreAdapter, StoredValue, Version } from '../types.js';

export const KEY_STATES: readonly KeyState[] = Object.freeze(['A', 'B', 'C', 'D', 'E']);

export type StateCounts = Record<KeyState, number>;

export interface AuditExample {
  readonly key: string;
  readonly state: KeyState;
  readonly description: string;
  /** The store's side: its version and stored (encoded) payload, or null when it has no row. */
  readonly store: { readonly version: Version; readonly payload: string } | null;
  /** The cache's record as peeked, or null when it holds nothing for the key. */
  readonly cache: CacheRecordView | null;
}

export interface AuditRepair {
  readonly key: string;
  /** The state the repair was for: D or E. */
  readonly state: 'D' | 'E';
  /** cache.invalidateOlder(cacheKey, fence) was called with this version. */
  readonly fence: Version;
  /** The key's state when read again after the repairs (undefined when the call failed). */
  readonly after: KeyState | undefined;
  /** Why the repair call failed, when it did. */
  readonly error?: string;
}

export type AuditPhase = 'store' | 'cache' | 'repair' | 'recheck';

export interface AuditProgress {
  readonly namespace: string;
  readonly phase: AuditPhase;
  /** Keys done in this phase (store and cache: keys scanned so far, over both phases). */
  readonly scanned: number;
  /** How many keys the phase has in all, when known (repair and recheck; the scans cannot know). */
  readonly total: number | undefined;
}

export interface AuditOptions {
  readonly store: StoreAdapter;
  readonly cache: CacheAdapter;
  readonly namespace: string;
  /** Repair D and E with version fencing, then read the repaired keys again. @default false */
  readonly repair?: boolean;
  /** Called as keys are scanned (at most once per page or chunk, and once at the end of each phase). */
  readonly onProgress?: (progress: AuditProgress) => void;
  /** Store rows read per page. @default 500 */
  readonly pageSize?: number;
  /** Examples kept per state. @default 5 */
  readonly examplesPerState?: number;
  /** Repaired keys listed in the report (all are repaired and counted). @default 100 */
  readonly maxRepairsListed?: number;
}

export interface AuditReport {
  readonly namespace: string;
  /** Keys classified: every key present on either side (a live store row or any cache record). */
  readonly keys: number;
  /** Per state, as found (D and E only when proven by a second read; a key rewritten during every look counts C). */
  readonly counts: StateCounts;
  readonly examples: Readonly<Record<KeyState, readonly AuditExample[]>>;
  readonly repair: {
    /** Whether repair was asked for. */
    readonly requested: boolean;
    /** Keys found D or E that a fenced invalidation was sent for. */
    readonly attempted: number;
    /** Of those, keys no longer D or E when read again. */
    readonly fixed: number;
    /** The first `maxRepairsListed` repairs. */
    readonly repairs: readonly AuditRepair[];
  };
  /** D and E left after the run: as found without repair, else as read again after repairing. */
  readonly remaining: { readonly D: number; readonly E: number };
  /** Examples of what remains D or E (both sides), up to `examplesPerState` each. */
  readonly remainingExamples: readonly AuditExample[];
  readonly durationMs: number;
}

interface Observation {
  readonly stored: StoredValue | undefined;
  readonly cached: CacheRecordView | undefined;
}

/** Both sides of a key, store first (a cache version above the store's then means the cache is ahead). */
async function observe(store: StoreAdapter, cache: CacheAdapter, namespace: string, key: string): Promise<Observation> {
  const stored = await store.read(namespace, key);
  const cached = await cache.peek(cacheKeyOf(namespace, key));
  return { stored, cached };
}

function isDefect(state: KeyState): state is 'D' | 'E' {
  return state === 'D' || state === 'E';
}

/** Looks a key that keeps changing gets before it is counted as unproven (C). */
const CONFIRM_LOOKS = 3;

interface Confirmed {
  readonly state: KeyState;
  readonly description: string;
  /** What proved the state (for a D or E, what the repair fences from). */
  readonly seen: Observation;
}

/**
 * The servable record of a D or E observation that is ahead of the store read before it (a version
 * the read did not have, or a live value over no row): a write that committed between the store
 * read and the peek may explain it. Undefined when the cache is below the store, which proves it.
 */
function aheadOfStore({ stored, cached }: Observation): Extract<CacheRecordView, { kind: 'value' }> | undefined {
  if (cached?.kind !== 'value') return undefined;
  if (stored === undefined) return cached.tombstone ? undefined : cached;
  return cached.version > stored.version ? cached : undefined;
}

/**
 * A key's state from fresh reads, D or E only when proven (see the file comment): never a write
 * that went through Lockstep between a store read and a peek. Store first, then the cache.
 */
async function confirmKey(store: StoreAdapter, cache: CacheAdapter, namespace: string, key: string): Promise<Confirmed> {
  for (let look = 0; look < CONFIRM_LOOKS; look++) {
    const seen = await observe(store, cache, namespace, key);
    const found = classifyKey(seen.stored, seen.cached);
    const cached = isDefect(found.state) ? aheadOfStore(seen) : undefined;
    if (cached === undefined) return { ...found, seen }; // consistent, or the cache below the store: proven
    const again = await store.read(namespace, key);
    if (again !== undefined) {
      const after = { stored: again, cached };
      // Below the cache (or a row at a tombstone's version): the store never had what the cache serves.
      if (again.version < cached.version || (again.version === cached.version && cached.tombstone)) return { ...classifyKey(again, cached), seen: after };
      if (again.version === cached.version) return { ...classifyKey(again, cached), seen: after }; // C: the write we raced
      continue; // a newer write since: look again
    }
    if (cached.tombstone) return { ...classifyKey(undefined, cached), seen: { stored: undefined, cached } }; // A: a delete we raced
    // A live value, still no row: a defect if the value outlived the second store read (a delete
    // that removed the row leased the key before that read, which removed that value for good).
    const still = await cache.peek(cacheKeyOf(namespace, key));
    if (still?.kind === 'value' && !still.tombstone && still.version === cached.version) {
      return { ...classifyKey(undefined, still), seen: { stored: undefined, cached: still } };
    }
  }
  // Every look raced a write: no defect was proven. Counted C, as the sampler does: a real defect
  // under such writes is either replaced by them or proven (the cache below the store) next time.
  const seen = await observe(store, cache, namespace, key);
  const found = classifyKey(seen.stored, seen.cached);
  if (!isDefect(found.state) || aheadOfStore(seen) === undefined) return { ...found, seen };
  return { state: 'C', description: `written during every look (the cache was ahead of each store read): no defect proven`, seen };
}

/** The version to fence a D or E key with: see the file comment. Undefined when there is nothing to fence. */
export function repairFence(stored: StoredValue | undefined, cached: CacheRecordView | undefined): Version | undefined {
  if (cached?.kind !== 'value') return undefined; // a lease or nothing serves nothing
  if (stored === undefined) return cached.tombstone ? undefined : cached.version + 1;
  if (cached.version < stored.version) return stored.version;
  if (cached.version === stored.version && !cached.tombstone) return undefined; // C
  return cached.version + 1;
}

function example(key: string, state: KeyState, description: string, { stored, cached }: Observation): AuditExample {
  return {
    key,
    state,
    description,
    store: stored === undefined ? null : { version: stored.version, payload: stored.payload },
    cache: cached ?? null,
  };
}

function emptyCounts(): StateCounts {
  return { A: 0, B: 0, C: 0, D: 0, E: 0 };
}

/** Scans, classifies and (with `repair`) repairs one namespace. Store and cache errors reject. */
export async function auditNamespace(options: AuditOptions): Promise<AuditReport> {
  const { store, cache, namespace, onProgress } = options;
  const pageSize = options.pageSize ?? 500;
  const perState = options.examplesPerState ?? 5;
  const maxListed = options.maxRepairsListed ?? 100;
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new RangeError(`pageSize must be a positive integer (got ${pageSize})`);
  const started = performance.now();
  const prefix = cacheKeyOf(namespace, '');
  const counts = emptyCounts();
  const examples: Record<KeyState, AuditExample[]> = { A: [], B: [], C: [], D: [], E: [] };
  /** Confirmed D and E keys with the observation that confirmed them, for repair. */
  const defects: Array<{ key: string; state: 'D' | 'E'; seen: Observation }> = [];
  let scanned = 0;
  const progress = (phase: AuditPhase, done: number, total: number | undefined): void => {
    onProgress?.({ namespace, phase, scanned: done, total });
  };

  const record = async (key: string, first: Observation): Promise<void> => {
    let seen = first;
    let { state, description } = classifyKey(seen.stored, seen.cached);
    if (isDefect(state)) {
      // Confirm: the walk read the two sides at different moments.
      ({ state, description, seen } = await confirmKey(store, cache, namespace, key));
    }
    counts[state]++;
    if (examples[state].length < perState) examples[state].push(example(key, state, description, seen));
    if (isDefect(state)) defects.push({ key, state, seen });
  };

  // 1. The store's live keys, each with its cache record.
  const storeKeys = new Set<string>();
  let after: string | undefined;
  for (;;) {
    const rows = await store.scan(namespace, after, pageSize);
    if (rows.length === 0) break;
    const cached = await Promise.all(rows.map((row) => cache.peek(prefix + row.key)));
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      storeKeys.add(row.key);
      await record(row.key, { stored: { version: row.version, payload: row.payload }, cached: cached[i] });
    }
    scanned += rows.length;
    progress('store', scanned, undefined);
    if (rows.length < pageSize) break;
    after = rows[rows.length - 1]!.key;
  }

  // 2. Cached keys the store did not list: read the store for each (it may have gained the key since).
  let sinceReport = 0;
  for await (const view of cache.scan(prefix)) {
    if (!view.key.startsWith(prefix)) continue;
    const key = view.key.slice(prefix.length);
    if (storeKeys.has(key)) continue;
    storeKeys.add(key); // a cache scan may list a key twice
    const servable = view.kind === 'value' && !view.tombstone;
    // Only a live value can be E: read the store for those; the rest serve nothing over no listed row.
    await record(key, servable ? await observe(store, cache, namespace, key) : { stored: undefined, cached: view });
    scanned++;
    if (++sinceReport >= pageSize) {
      sinceReport = 0;
      progress('cache', scanned, undefined);
    }
  }
  progress('cache', scanned, scanned);

  // 3. Repair, then read every repaired key again.
  const repairs: Array<{ key: string; state: 'D' | 'E'; fence: Version; seen: Observation; error?: string }> = [];
  if (options.repair === true) {
    let done = 0;
    for (const { key, state, seen } of defects) {
      const fence = repairFence(seen.stored, seen.cached);
      done++;
      if (fence === undefined) continue;
      try {
        await cache.invalidateOlder(prefix + key, fence);
        repairs.push({ key, state, fence, seen });
      } catch (error) {
        repairs.push({ key, state, fence, seen, error: (error as Error)?.message ?? String(error) });
      }
      if (done % pageSize === 0) progress('repair', done, defects.length);
    }
    progress('repair', done, defects.length);
  }

  const remaining = { D: 0, E: 0 };
  const remainingExamples: AuditExample[] = [];
  const listed: AuditRepair[] = [];
  let fixed = 0;
  const keep = (key: string, state: 'D' | 'E', description: string, seen: Observation): void => {
    remaining[state]++;
    if (remainingExamples.filter((e) => e.state === state).length < perState) remainingExamples.push(example(key, state, description, seen));
  };
  if (options.repair === true) {
    const repairedKeys = new Set(repairs.map((r) => r.key));
    let done = 0;
    for (const { seen: found, ...repair } of repairs) {
      let after: KeyState | undefined;
      if (repair.error === undefined) {
        const { state, description, seen } = await confirmKey(store, cache, namespace, repair.key);
        after = state;
        if (isDefect(state)) keep(repair.key, state, description, seen);
        else fixed++;
      } else {
        keep(repair.key, repair.state, `the repair failed: ${repair.error}`, found);
      }
      if (listed.length < maxListed) listed.push({ ...repair, after });
      if (++done % pageSize === 0) progress('recheck', done, repairs.length);
    }
    // Defects with nothing to fence (none today: every D and E has a servable record) stay as found.
    for (const { key, state, seen } of defects) {
      if (!repairedKeys.has(key)) keep(key, state, classifyKey(seen.stored, seen.cached).description, seen);
    }
    progress('recheck', done, repairs.length);
  } else {
    for (const { key, state, seen } of defects) keep(key, state, classifyKey(seen.stored, seen.cached).description, seen);
  }

  return {
    namespace,
    keys: KEY_STATES.reduce((sum, state) => sum + counts[state], 0),
    counts,
    examples,
    repair: { requested: options.repair === true, attempted: repairs.length, fixed, repairs: listed },
    remaining,
    remainingExamples,
    durationMs: performance.now() - started,
  };
}
