// Online consistency sampling (the "nines" of Meta's Polaris): a fraction of cache hits is checked
// against the store in the background, and the share of hits proved inconsistent is exported as
// `lockstep_consistency_violations_total / lockstep_consistency_checks_total`.
//
// The rule. A hit served version `h` (a value, or a tombstone: "not found") at time t0. Two facts
// make a verdict possible without false alarms under concurrent writes:
//   F1. Per key, store versions only rise, across delete and re-create (the store's contract).
//   F2. Every write, in every process, leases the key in the cache *before* it commits: from then
//       on the cache serves nothing for the key until it publishes the new version (or something
//       newer). So once the store has committed version s, the cache never again serves a version
//       below s, and a version is only ever served after it was committed.
// Hence, for one observation of the store at t1 followed by one of the cache at t2 > t1 (always in
// that order), a servable cache version c is inconsistent iff c < s (stale: the store committed s
// before the cache served c). And for a cache observation followed by a store read, c is
// inconsistent iff the store's version is below c (by F1 the store never had c when it was served).
// Anything else may be explained by a write that committed between two observations, and is not
// counted. Concretely:
//   1. Right after the hit (never delaying the read), read the store: a row below `h` (or a row at
//      `h` when the hit was a tombstone) is a violation: the cache served a version the store never
//      committed. A row at `h` under a live hit, or no row under a tombstone hit, is consistent.
//   2. Otherwise a write or delete may have committed after the hit (the normal case under
//      concurrent writes): wait `recheckDelay`, so that an inconsistency the protocol repairs by
//      design (a plain-SQL write until the journal replays it) is not counted, then read the store,
//      then peek the cache. Nothing servable → consistent. A value or tombstone below the store's
//      row → violation (stale, by F2). Equal → consistent (a tombstone at a row's version → violation).
//   3. If the cache is ahead of that store read (a version above the row's, or a live value over no
//      row), a write may have committed in between: read the store again. A version below the
//      cache's → violation (F1). Still no row under a live value, and a second peek still serves
//      the same live version → violation: the delete that removed the row took the key's lease
//      before the first of those two reads, which removed that value for good (fills of it were
//      voided by the same lease). Anything else → consistent.
// A write in flight, in this process or any other, holds the key's lease, which a peek sees as
// "nothing servable": no separate bookkeeping of in-flight writes is needed, and a healthy system
// under any mix of concurrent writes, deletes and reads counts no violation. The one healthy case
// this rule would misjudge is a store whose tombstones were pruned while a cache still held a
// version of the key (versions restart at 1), which the store's retention rules out. A check whose
// store read or peek fails is dropped (neither a check nor a violation).
import type { EngineCounters } from '../engine/events.js';
import type { CacheAdapter, CacheRecordView, StoreAdapter, StoredValue, Version } from '../types.js';

export interface ConsistencySamplerOptions {
  readonly store: StoreAdapter;
  readonly cache: CacheAdapter;
  readonly namespace: string;
  /** Bumped in place: `consistencyChecks` per verdict, `consistencyViolations` per violation. */
  readonly counters: Pick<EngineCounters, 'consistencyChecks' | 'consistencyViolations'>;
  /** Wait before looking again at a hit a later write may explain (0: look again at once). */
  readonly recheckDelayMs: number;
  /** Checks in flight at most; hits sampled beyond it are not checked. */
  readonly maxPending: number;
  /** Called with every violation found, e.g. to log it. Must not throw. */
  readonly onViolation?: (violation: ConsistencyViolation) => void;
}

export interface ConsistencyViolation {
  readonly namespace: string;
  readonly key: string;
  /** The version the sampled hit served, and whether it was a value (false: a tombstone). */
  readonly hit: { readonly version: Version; readonly live: boolean };
  readonly reason: string;
}

export interface ConsistencySampler {
  /**
   * Checks a hit in the background: returns at once, never throws. A key with a check in flight,
   * or a full queue (`maxPending`), is not sampled again.
   */
  sample(key: string, cacheKey: string, version: Version, live: boolean): void;
  /** Checks in flight. */
  readonly pending: number;
  /**
   * Stops sampling: checks still waiting out their recheck delay are dropped, checks reading the
   * store or cache are awaited (the adapters must stay open until this resolves).
   */
  close(): Promise<void>;
}

type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const OK: Verdict = Object.freeze({ ok: true });
const violation = (reason: string): Verdict => ({ ok: false, reason });
/** Marks a check dropped (store or cache failure, or closing): neither a check nor a violation. */
const DROPPED = Symbol('dropped');

export function createConsistencySampler(options: ConsistencySamplerOptions): ConsistencySampler {
  const { store, cache, namespace, counters, recheckDelayMs, maxPending, onViolation } = options;
  const inFlight = new Map<string, Promise<void>>();
  /** Wakes every check sleeping out its delay (on close). */
  const sleepers = new Set<() => void>();
  let closed = false;

  const readStore = async (key: string): Promise<StoredValue | undefined> => store.read(namespace, key);
  const peek = async (cacheKey: string): Promise<CacheRecordView | undefined> => cache.peek(cacheKey);

  /** Resolves true after `ms`, or false as soon as the sampler closes. */
  function sleep(ms: number): Promise<boolean> {
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve(!closed);
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      sleepers.add(wake);
    });
  }

  async function judge(key: string, cacheKey: string, h: Version, live: boolean): Promise<Verdict | typeof DROPPED> {
    // 1. The store, after the hit.
    const first = await readStore(key);
    if (first !== undefined) {
      if (first.version < h) return violation(`the cache served version ${h}, above the store's ${first.version}`);
      if (first.version === h) return live ? OK : violation(`the cache served a tombstone at version ${h}, the store holds a row at ${h}`);
    } else if (!live) {
      return OK;
    }
    // 2. A write or delete may have committed after the hit: look again, store first, then cache.
    if (!(await sleep(recheckDelayMs))) return DROPPED;
    const stored = await readStore(key);
    const cached = await peek(cacheKey);
    if (cached?.kind !== 'value') return OK; // a lease or nothing: the cache serves nothing now
    if (stored !== undefined) {
      if (cached.version < stored.version) {
        return violation(`the cache serves version ${cached.version} after the store committed ${stored.version}`);
      }
      if (cached.version === stored.version) {
        return cached.tombstone ? violation(`the cache serves a tombstone at version ${cached.version}, the store holds a row at it`) : OK;
      }
    } else if (cached.tombstone) {
      return OK;
    }
    // 3. The cache is ahead of that store read: a write may have committed in between.
    const again = await readStore(key);
    if (again !== undefined) {
      if (again.version < cached.version || (again.version === cached.version && cached.tombstone)) {
        return violation(`the cache serves version ${cached.version}, which the store (at ${again.version}) never committed`);
      }
      return OK;
    }
    if (cached.tombstone) return OK;
    const still = await peek(cacheKey);
    if (still?.kind === 'value' && !still.tombstone && still.version === cached.version) {
      return violation(`the cache serves version ${cached.version} while the store has no row`);
    }
    return OK;
  }

  async function check(key: string, cacheKey: string, version: Version, live: boolean): Promise<void> {
    // Let the read that was sampled resolve first: an in-process store answers synchronously.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let verdict: Verdict | typeof DROPPED;
    try {
      verdict = await judge(key, cacheKey, version, live);
    } catch {
      return; // the store or cache failed: no verdict
    }
    if (verdict === DROPPED) return;
    counters.consistencyChecks++;
    if (verdict.ok) return;
    counters.consistencyViolations++;
    try {
      onViolation?.({ namespace, key, hit: { version, live }, reason: verdict.reason });
    } catch {
      // a listener must not break sampling
    }
  }

  return {
    sample(key, cacheKey, version, live) {
      if (closed || inFlight.size >= maxPending || inFlight.has(cacheKey)) return;
      const done = check(key, cacheKey, version, live).finally(() => inFlight.delete(cacheKey));
      inFlight.set(cacheKey, done);
    },
    get pending() {
      return inFlight.size;
    },
    async close() {
      closed = true;
      for (const wake of [...sleepers]) wake();
      await Promise.allSettled([...inFlight.values()]);
    },
  };
}
