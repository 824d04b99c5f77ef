// The read protocol after a cache answer that is not a plain hit: misses fill under a lease,
// bypasses read the store without filling, cache errors fall back to the store (fail open).
import { StoreReadError, StoreTimeoutError } from '../errors.js';
import type { CacheGetResult, MaybePromise, StoredValue } from '../types.js';
import type { ReadEntry, ReadSource } from './api.js';
import type { EngineContext } from './context.js';
import { startDeadline, within, type Deadline } from './deadline.js';
import { isThenable } from '../maybe-promise.js';
import { FILL_WAIT_TIMED_OUT, shouldWaitForFill, startFillWait, type FillWaitOutcome } from './fill-wait.js';

/** How often a reader waits for this process's in-flight fill of the key before reading the store itself. */
const MAX_FLIGHT_WAITS = 3;

/** What a miss or bypass reads: the key's committed payload and version, or undefined when not found. */
export type LoadCommitted = (ctx: EngineContext, key: string) => Promise<StoredValue | undefined>;

/**
 * `load` is Lockstep's store by default; the inline helpers pass the caller's loader (inline.ts).
 * The entry itself, not a promise, when every step answered synchronously (a cold read on the memory
 * cache and SQLite: loadAndFill).
 */
export function readAfterCache<T>(
  ctx: EngineContext,
  key: string,
  cacheKey: string,
  first: CacheGetResult | Promise<CacheGetResult>,
  load: LoadCommitted = readStoreValue,
): MaybePromise<ReadEntry<T>> {
  // A miss with our own fill lease, answered synchronously (the memory cache): the cold read's
  // common case goes straight to the store read and the fill, without the loop's promise hops.
  // Its deadline starts where it has something to bound (loadAndFill).
  if (!(first instanceof Promise) && first.kind === 'miss' && first.token !== undefined) {
    ctx.counters.cacheMisses++;
    return loadAndFill<T>(ctx, key, cacheKey, first.token, load, undefined);
  }
  // Every store wait of this read ends within the lease budget (deadline.ts).
  return readAfterAnswer<T>(ctx, key, cacheKey, first, load, startDeadline(ctx.options.leaseTtlMs));
}

async function readAfterAnswer<T>(
  ctx: EngineContext,
  key: string,
  cacheKey: string,
  first: CacheGetResult | Promise<CacheGetResult>,
  load: LoadCommitted,
  deadline: Deadline,
): Promise<ReadEntry<T>> {
  let pending: CacheGetResult | Promise<CacheGetResult> = first;
  for (let waits = 0; ; waits++) {
    let answer: CacheGetResult;
    try {
      answer = await pending;
    } catch {
      ctx.counters.cacheReadFailures++;
      return readStore<T>(ctx, key, 'store-fallback', load, deadline);
    }
    switch (answer.kind) {
      case 'value':
        if (ctx.journalReplaying()) {
          // The journal retained at start is not applied yet: this value may be older than an
          // acknowledged write whose row is still to come (docs/protocol.md, journal invariant).
          ctx.counters.cacheBypasses++;
          return readStore<T>(ctx, key, 'bypass', load, deadline);
        }
        ctx.counters.cacheHits++;
        return { found: !answer.tombstone, value: ctx.entries.valueOf(answer) as T | undefined, version: answer.version, source: 'hit' };
      case 'bypass':
        ctx.counters.cacheBypasses++;
        return readStore<T>(ctx, key, 'bypass', load, deadline);
      case 'miss': {
        if (answer.token !== undefined) {
          ctx.counters.cacheMisses++;
          return loadAndFill<T>(ctx, key, cacheKey, answer.token, load, deadline);
        }
        // Another reader holds the fill lease. If it is in this process, wait for its fill and ask
        // the cache again: its store read began after ours was invoked or it is already in the
        // cache, where the protocol keeps it no older than any acknowledged write. If it is in
        // another process, one reader of this process waits for it by asking the cache again
        // (fill-wait.ts) and the others join that wait the same way.
        const flight = ctx.flights.get(cacheKey);
        if (flight === undefined && waits < MAX_FLIGHT_WAITS && shouldWaitForFill(ctx, cacheKey)) {
          let outcome: FillWaitOutcome;
          try {
            outcome = await startFillWait(ctx, cacheKey, deadline);
          } catch {
            ctx.counters.cacheReadFailures++;
            return readStore<T>(ctx, key, 'store-fallback', load, deadline);
          }
          if (outcome !== FILL_WAIT_TIMED_OUT) {
            pending = outcome;
            continue;
          }
        }
        if (flight === undefined || waits >= MAX_FLIGHT_WAITS) {
          // No wait (disabled, given up, or this reader's own wait ran out): read the store, do not fill.
          ctx.counters.cacheMisses++;
          return readStore<T>(ctx, key, 'miss', load, deadline);
        }
        const joined = await deadline.race(flight.catch(() => undefined), () => readTimeout(ctx, key, 'another reader\'s load of the key'));
        if (joined === FILL_WAIT_TIMED_OUT) {
          // The wait we joined gave up on the lease holder: read the store (this read began before it did).
          ctx.counters.cacheMisses++;
          return readStore<T>(ctx, key, 'miss', load, deadline);
        }
        try {
          pending = ctx.cache.get(cacheKey, ctx.options.leaseTtlMs);
        } catch (error) {
          pending = Promise.reject(error);
        }
        continue;
      }
    }
  }
}

/** The error of a store wait that ran out of the read's budget. */
export function readTimeout(ctx: EngineContext, key: string, what = 'the read'): StoreTimeoutError {
  return new StoreTimeoutError(`the store did not answer ${what} within the lease budget (${ctx.options.leaseTtlMs} ms)`, {
    key,
    namespace: ctx.namespace,
  });
}

/** Reads the store, within what is left of the deadline. */
function loadWithin(ctx: EngineContext, key: string, load: LoadCommitted, deadline: Deadline): Promise<StoredValue | undefined> {
  // Lockstep's own store: its errors are named in the deadline's own callback, one promise less than readStoreValue.
  if (load === readStoreValue) {
    return within(deadline, () => Promise.resolve(ctx.store.read(ctx.namespace, key)), () => readTimeout(ctx, key), undefined, (error) => storeReadError(ctx, key, error));
  }
  return within(deadline, () => load(ctx, key), () => readTimeout(ctx, key));
}

export function readStoreValue(ctx: EngineContext, key: string): Promise<StoredValue | undefined> {
  let reading: Promise<StoredValue | undefined>;
  try {
    reading = Promise.resolve(ctx.store.read(ctx.namespace, key));
  } catch (error) {
    return Promise.reject(storeReadError(ctx, key, error));
  }
  return reading.then(undefined, (error: unknown) => {
    throw storeReadError(ctx, key, error);
  });
}

function storeReadError(ctx: EngineContext, key: string, error: unknown): StoreReadError {
  if (error instanceof StoreReadError) return error; // an adapter's own timeout keeps its code
  return new StoreReadError(`the store failed the read: ${(error as Error)?.message ?? String(error)}`, {
    key,
    namespace: ctx.namespace,
    cause: error,
  });
}

function readStore<T>(ctx: EngineContext, key: string, source: ReadSource, load: LoadCommitted, deadline: Deadline): Promise<ReadEntry<T>> {
  return loadWithin(ctx, key, load, deadline).then((stored) =>
    stored === undefined
      ? { found: false, value: undefined, version: 0, source }
      : { found: true, value: ctx.options.codec.decode(stored.payload) as T, version: stored.version, source },
  );
}

/**
 * The store read and the fenced fill under our lease, registered as the key's in-process flight
 * until the fill has landed (joiners then ask the cache again). Promise chains, not async
 * functions: a cold read's engine work is mostly promise hops otherwise. A store that answers
 * synchronously (SQLite) is filled from at once, with no flight: nothing can join a flight that
 * begins and ends inside one synchronous step.
 *
 * `deadline`: the read's, when it waited before (readAfterAnswer); otherwise one starts here, before
 * the first wait. Lockstep's own store is asked first: an answer given at once has nothing to wait
 * for, so no deadline to race (a race with a read that has settled always goes to the read), and a
 * promise is raced from the moment the store handed it over.
 */
function loadAndFill<T>(
  ctx: EngineContext,
  key: string,
  cacheKey: string,
  token: string,
  load: LoadCommitted,
  deadline: Deadline | undefined,
): MaybePromise<ReadEntry<T>> {
  // Read the store only once the drainer knows where the journal ends (see write-path.ts, step 0):
  // a bypass write after our read is then behind the cursor, and is replayed over our fill. Once
  // it is known, a flag says so: no wait to race.
  if (!ctx.journalPositionKnown || load !== readStoreValue) return loadInFlight<T>(ctx, key, cacheKey, token, load, deadline, undefined);
  let reading: MaybePromise<StoredValue | undefined>;
  try {
    reading = ctx.store.read(ctx.namespace, key);
  } catch (error) {
    return Promise.reject(storeReadError(ctx, key, error));
  }
  if (!isThenable(reading)) return fillAtOnce<T>(ctx, cacheKey, token, reading);
  return loadInFlight<T>(ctx, key, cacheKey, token, load, deadline, reading);
}

/**
 * loadAndFill's steps that wait: raced against the deadline, registered as the key's flight. Apart
 * from the synchronous path because its closures would make every call allocate their context (a
 * cold read's garbage is most of its cost over the raw read: scavenges).
 * `reading`: the store's promise when Lockstep's own store was already asked.
 */
function loadInFlight<T>(
  ctx: EngineContext,
  key: string,
  cacheKey: string,
  token: string,
  load: LoadCommitted,
  deadline: Deadline | undefined,
  reading: PromiseLike<StoredValue | undefined> | undefined,
): Promise<ReadEntry<T>> {
  let loaded: Promise<StoredValue | undefined>;
  if (reading !== undefined) {
    loaded = (deadline ?? startDeadline(ctx.options.leaseTtlMs)).race(Promise.resolve(reading), () => readTimeout(ctx, key), undefined, (error) =>
      storeReadError(ctx, key, error),
    );
  } else if (!ctx.journalPositionKnown) {
    const budget = deadline ?? startDeadline(ctx.options.leaseTtlMs);
    loaded = budget.race(ctx.journalReady, () => readTimeout(ctx, key, 'the journal\'s position')).then(() => loadWithin(ctx, key, load, budget));
  } else {
    loaded = loadWithin(ctx, key, load, deadline ?? startDeadline(ctx.options.leaseTtlMs));
  }
  const forget = (): void => {
    if (ctx.flights.get(cacheKey) === flight) ctx.flights.delete(cacheKey);
  };
  const flight: Promise<ReadEntry<T>> = loaded.then(
    (stored) => {
      try {
        return fillFrom<T>(ctx, cacheKey, token, stored, forget);
      } catch (error) {
        forget(); // a payload the codec cannot read: the read fails, the flight ends with it
        throw error;
      }
    },
    (error: unknown) => {
      forget();
      throw error;
    },
  );
  ctx.flights.set(cacheKey, flight);
  return flight;
}

/**
 * The fill after a store read that answered synchronously. A synchronous fill (the memory cache)
 * settles the read here; a fill that is a promise is the key's flight until it lands, as in
 * loadAndFill.
 */
function fillAtOnce<T>(ctx: EngineContext, cacheKey: string, token: string, stored: StoredValue | undefined): MaybePromise<ReadEntry<T>> {
  let filled: MaybePromise<ReadEntry<T>>;
  try {
    filled = fillFrom<T>(ctx, cacheKey, token, stored, undefined);
  } catch (error) {
    return Promise.reject(error); // a payload the codec cannot read: the read fails
  }
  if (!(filled instanceof Promise)) return filled;
  const flight: Promise<ReadEntry<T>> = filled.then((entry) => {
    if (ctx.flights.get(cacheKey) === flight) ctx.flights.delete(cacheKey);
    return entry;
  });
  ctx.flights.set(cacheKey, flight);
  return flight;
}

/** Fills what the store answered, fenced by our lease; the answer is good whether the fill lands or not. */
function fillFrom<T>(
  ctx: EngineContext,
  cacheKey: string,
  token: string,
  stored: StoredValue | undefined,
  forget: (() => void) | undefined,
): ReadEntry<T> | Promise<ReadEntry<T>> {
  const entry = stored === undefined ? ctx.entries.tombstone(0) : ctx.entries.fromStore(stored);
  const ttlMs = stored === undefined ? ctx.options.tombstoneTtlMs : ctx.options.ttlMs;
  const answer: ReadEntry<T> = { found: stored !== undefined, value: ctx.entries.valueOf(entry) as T | undefined, version: entry.version, source: 'miss' };
  let accepted: boolean | PromiseLike<boolean>;
  try {
    // Accepted only if no write or invalidation touched the key since our get: version fencing.
    accepted = ctx.cache.fill(cacheKey, token, entry, ttlMs);
  } catch {
    ctx.counters.cacheReadFailures++; // the fill lease expires; the answer itself is still good
    forget?.();
    return answer;
  }
  if (typeof accepted === 'boolean') {
    if (!accepted) ctx.counters.fillsRejected++;
    forget?.();
    return answer;
  }
  return afterFill(ctx, accepted, forget, answer);
}

/** fillFrom's wait for a fill that is a promise (apart: its closures' context is not allocated by a synchronous fill). */
function afterFill<T>(ctx: EngineContext, accepted: PromiseLike<boolean>, forget: (() => void) | undefined, answer: ReadEntry<T>): Promise<ReadEntry<T>> {
  return Promise.resolve(accepted).then(
    (ok) => {
      if (!ok) ctx.counters.fillsRejected++;
      forget?.();
      return answer;
    },
    () => {
      ctx.counters.cacheReadFailures++;
      forget?.();
      return answer;
    },
  );
}
